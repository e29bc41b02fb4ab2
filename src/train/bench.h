// Measurements for `anoswin bench train`: the machine's sgemm rate (the practical peak that the
// model's GEMMs can reach) and the time of anoswin's full training step.
#ifndef ANOSWIN_TRAIN_BENCH_H
#define ANOSWIN_TRAIN_BENCH_H


// Best GFLOP/s of `reps` single-precision n x n x n sgemm calls with OpenBLAS's current threads.
double bench_sgemm_gflops(int n, int reps);
// The same for gemm (NN_FP32) or gemm_bf16 (NN_BF16), nn/nn.h.
double bench_gemm_gflops(int n, int reps, int precision);

typedef struct bench_step_result {
    double step_s;     // mean seconds per training step (forward + backward + AdamW)
    double img_per_s;  // batch / step_s
    double loss;       // loss of the last step (sanity)
    double create_s;   // model creation + init
} bench_step_result;

// Times `steps` training steps (after `warmup` untimed ones) at batch B on random images and
// reference window masks, DropPath on. Returns 0 or -1 with an error.
int bench_train_step(const char *method, const char *config_json, int B, int steps, int warmup, bench_step_result *r);

#endif
