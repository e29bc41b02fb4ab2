#!/usr/bin/env python3
"""Writes the small seed corpora of the fuzz targets (fuzz/corpus/<target>/), independently of
the C code: NIfTI files from nibabel, safetensors files from tools/safetensors_io.py (a tiny
Swin MAE from tools/swin_mae_ref.py among them), manifest CSVs and command lines by hand.

Usage: fuzz/make_seeds.py [OUTDIR]   (default: fuzz/corpus next to this script)
Inputs of fuzz_nifti start with one flag byte (bit 0: gzip the rest, bit 1: write back).
"""
import io
import os
import sys

import nibabel as nib
import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'tools'))
import safetensors_io as S  # noqa: E402
import swin_mae_ref as R  # noqa: E402


def put(out, target, name, data):
    d = os.path.join(out, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), 'wb') as f:
        f.write(data)


def nifti_bytes(img):
    bio = io.BytesIO()
    fm = img.make_file_map({'image': bio, 'header': bio})
    img.to_file_map(fm)
    return bio.getvalue()


def nifti_seeds(out):
    rng = np.random.default_rng(1)
    aff = np.diag([1.0, 1.5, 2.0, 1.0])
    aff[:3, 3] = [-3, 4, 5]
    rot = np.array([[0, -1, 0], [1, 0, 0], [0, 0, 1.0]])
    seeds = {
        'u8': nib.Nifti1Image(rng.integers(0, 255, (4, 3, 2)).astype(np.uint8), aff),
        'i16_be': nib.Nifti1Image(rng.integers(-9, 99, (3, 3, 3)).astype('>i2'), aff),
        'f32_sform_only': nib.Nifti1Image(rng.random((2, 3, 4)).astype(np.float32), aff),
        'f64_n2': nib.Nifti2Image(rng.random((3, 2, 2)), aff),
        'i32_4d_one': nib.Nifti1Image(rng.integers(0, 9, (2, 2, 2, 1)).astype(np.int32), aff),
        '2d': nib.Nifti1Image(rng.integers(0, 9, (4, 4)).astype(np.int16), aff),
    }
    q = nib.Nifti1Image(rng.integers(0, 9, (3, 3, 2)).astype(np.uint16), np.eye(4))
    q.set_qform(np.vstack([np.hstack([rot, [[1], [2], [3]]]), [0, 0, 0, 1]]), code=1)
    q.set_sform(None, code=0)
    seeds['u16_qform'] = q
    s = nib.Nifti1Image(rng.integers(0, 9, (2, 2, 3)).astype(np.int8), aff)
    s.header.set_slope_inter(0.5, 10)
    seeds['i8_scaled'] = s
    for name, img in seeds.items():
        b = nifti_bytes(img)
        put(out, 'fuzz_nifti', name + '.plain', bytes([0]) + b)
        put(out, 'fuzz_nifti', name + '.gz_writeback', bytes([3]) + b)


def safetensors_seeds(out, tmp):
    def save(name, tensors, meta=None):
        p = os.path.join(tmp, name)
        S.save_file(tensors, p, meta)
        put(out, 'fuzz_safetensors', name, open(p, 'rb').read())

    save('small', {'a': torch.arange(6, dtype=torch.float32).reshape(2, 3), 'i': torch.arange(3)},
         {'k': 'v', 'epoch': '3'})
    save('dtypes', {n: torch.ones(2, dtype=dt) for n, dt in
                    [('f64', torch.float64), ('f16', torch.float16), ('bf16', torch.bfloat16),
                     ('i32', torch.int32), ('i16', torch.int16), ('i8', torch.int8), ('u8', torch.uint8),
                     ('b', torch.bool)]})
    save('empty', {})
    save('scalar_and_zero', {'s': torch.tensor(1.5), 'z': torch.zeros(0, 3)}, {'esc': 'a"b\\c\n\u00e9'})
    # The smallest valid Swin MAE, with and without its config metadata.
    text = 'img_size=8,patch_size=1,in_chans=1,embed_dim=4,depths=1/1/1/1,num_heads=1/1/1/1,window=1,mlp_ratio=1'
    cfg = R.parse_config(text)
    torch.manual_seed(0)
    sd = R.SwinMAE(cfg).state_dict()
    save('tiny_model', sd, {'format': 'pt', 'anoswin.config': R.config_json(cfg)})
    save('tiny_model_nometa', sd)


def manifest_seeds(out):
    seeds = {
        'basic': 'subject,image,label,mask,split\ns1,a.nii.gz,b.nii.gz,,test\ns2,sub/c.nii,,,healthy\n',
        'reordered': 'image,subject\na.nii.gz,x\n"b.nii.gz","y,z"\n',
        'quotes_bom_crlf': '\ufeffSubject,Image,Split\r\n"s""1",a.nii.gz,train\r\n\r\n s2 , b.nii.gz ,val\r\n',
        'bad_quote': 'subject,image\n"s1,a.nii.gz\n',
        'missing_file': 'subject,image\ns1,nope.nii.gz\n',
        'dup': 'subject,image\ns1,a.nii.gz\ns1,b.nii.gz\n',
    }
    for name, text in seeds.items():
        put(out, 'fuzz_manifest', name, text.encode('utf-8'))


def options_seeds(out):
    seeds = {
        'help': ['--help'],
        'version': ['-V'],
        'data_help': ['data', '--help'],
        'synth': ['data', 'synth', '--out', 'x', '-n', '3', '--test', '2', '--seed', '7', '--modality', 't1,t2',
                  '-t', '2'],
        'synth_bad': ['data', 'synth', '-o', 'x', '-n', '-1', '--threads=0', 'extra'],
        'synth_grouped': ['data', 'synth', '-hn3', '--mod', 'all'],
        'list': ['data', 'list', '/nonexistent', '--modality', 'flair', '--split', 'test'],
        'config': ['@img_size=96,embed_dim=48,depths=[2,2,2,2],num_heads=3/6/12/24,window=3'],
        'config_json': ['@{"img_size":224,"patch_size":4,"drop_path_rate":0.1}'],
        'unknown': ['frobnicate', '-x'],
        'info_model': ['info', '--model', '--config', 'img_size=96,window=3'],
        'info_ckpt': ['info', '--checkpoint', 'x.safetensors', '-h'],
        'info_files': ['info', 'a.nii', '/etc/passwd', 'b.safetensors'],
        'train': ['train', '--data', 'd', '--out', 'run', '--config', 'img_size=64,window=2', '--epochs', '3',
                  '--batch', '4', '--lr', '1e-3', '--mask-ratio', '0.5', '--seed', '3', '--z-first', '70',
                  '--z-last', '79', '--threads', '1'],
        'train_resume': ['train', '--resume', '--out', 'run', '--max-steps', '5', '--quiet'],
        'train_bad': ['train', '--out', '/abs/x', '--data', '../d', '--val-fraction', '2', '--mask-size=0'],
    }
    for name, words in seeds.items():
        put(out, 'fuzz_options', name, '\n'.join(words).encode('utf-8'))


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, 'corpus')
    tmp = os.path.join(out, '.tmp')
    os.makedirs(tmp, exist_ok=True)
    nifti_seeds(out)
    safetensors_seeds(out, tmp)
    manifest_seeds(out)
    options_seeds(out)
    for f in os.listdir(tmp):
        os.remove(os.path.join(tmp, f))
    os.rmdir(tmp)


if __name__ == '__main__':
    main()
