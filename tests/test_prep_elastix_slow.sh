#!/bin/bash
# anoswin prep against elastix (Debian's `elastix`, a test-only dependency): on a raw-looking
# Colin27 scan (`data synth --raw`, a known random affine), elastix's affine registration
# (AdvancedMattesMutualInformation, 3 resolutions, adaptive stochastic gradient descent) and
# anoswin prep's must agree within 1 mm mean displacement over the template's brain; both are
# also scored against the truth. Skipped (77) when elastix is not installed.
set -u
bin=${ANOSWIN_BIN:?}
py=${ANOSWIN_PYTHON:-/usr/bin/python3}
tmp=scratch_prep_elastix
rm -rf "$tmp" && mkdir -p "$tmp"
. "$(dirname "$0")/helpers/cli.sh"
command -v elastix >/dev/null || { echo "elastix not installed (scripts/install-deps.sh --test): skipped"; exit 77; }
tpl=/usr/share/mricron/templates

succeeds "data synth --raw" "$bin" data synth --raw --healthy 1 --seed 11 --out "$tmp/raw" --threads 2
scan=$tmp/raw/healthy/raw_000/raw_000_t1.nii.gz
succeeds "anoswin prep" "$bin" prep --out "$tmp/prep" --threads 2 "$scan"

cat >"$tmp/affine.txt" <<'P'
(FixedInternalImagePixelType "float")
(MovingInternalImagePixelType "float")
(FixedImageDimension 3)
(MovingImageDimension 3)
(UseDirectionCosines "true")
(Registration "MultiResolutionRegistration")
(Interpolator "BSplineInterpolator")
(ResampleInterpolator "FinalBSplineInterpolator")
(Resampler "DefaultResampler")
(FixedImagePyramid "FixedSmoothingImagePyramid")
(MovingImagePyramid "MovingSmoothingImagePyramid")
(Optimizer "AdaptiveStochasticGradientDescent")
(Transform "AffineTransform")
(Metric "AdvancedMattesMutualInformation")
(AutomaticScalesEstimation "true")
(AutomaticTransformInitialization "true")
(AutomaticTransformInitializationMethod "CenterOfGravity")
(HowToCombineTransforms "Compose")
(NumberOfHistogramBins 32)
(NumberOfResolutions 3)
(MaximumNumberOfIterations 400)
(NumberOfSpatialSamples 4000)
(NewSamplesEveryIteration "true")
(ImageSampler "RandomCoordinate")
(BSplineInterpolationOrder 1)
(FinalBSplineInterpolationOrder 1)
(DefaultPixelValue 0)
(WriteResultImage "false")
(RandomSeed 1)
P
mkdir -p "$tmp/elastix"
succeeds "elastix (affine, Mattes MI)" elastix -f "$tpl/ch2.nii.gz" -m "$scan" -p "$tmp/affine.txt" \
  -out "$tmp/elastix" -threads 2

"$py" - "$tmp" "$tpl" <<'PY' && ok "elastix and prep agree within 1 mm over the brain" || bad "elastix agreement"
import json, re, sys, numpy as np, nibabel as nib
tmp, tpl = sys.argv[1:3]
ours = np.array(json.load(open(tmp + "/prep/raw_000/raw_000_prep.json"))["template_to_subject"]).reshape(4, 4)
truth = np.array(json.load(open(tmp + "/raw/healthy/raw_000/truth.json"))["template_to_subject"]).reshape(4, 4)
txt = open(tmp + "/elastix/TransformParameters.0.txt").read()
p = np.array(re.search(r"\(TransformParameters ([^)]*)\)", txt).group(1).split(), float)
c = np.array(re.search(r"\(CenterOfRotationPoint ([^)]*)\)", txt).group(1).split(), float)
# elastix: fixed (template) point -> moving (scan) point in ITK's LPS world: y = A (x - c) + c + t
A, t = p[:9].reshape(3, 3), p[9:12]
F = np.diag([-1.0, -1.0, 1.0])
el = np.eye(4)
el[:3, :3] = F @ A @ F
el[:3, 3] = F @ (t + c - A @ c)
bet = nib.load(tpl + "/ch2bet.nii.gz")
ijk = np.argwhere(np.asarray(bet.dataobj) > 0)[::7]
x = (bet.affine @ np.c_[ijk, np.ones(len(ijk))].T)
def err(a, b): return np.linalg.norm((a @ x - b @ x)[:3], axis=0).mean()
e_el, e_ours, e_agree = err(el, truth), err(ours, truth), err(el, ours)
print(f"mean displacement over the brain: elastix-truth {e_el:.3f} mm, prep-truth {e_ours:.3f} mm, elastix-prep {e_agree:.3f} mm")
sys.exit(0 if e_agree <= 1.0 else 1)
PY
finish
