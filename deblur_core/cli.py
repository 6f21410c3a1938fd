"""Command line: ``python -m deblur_core analyze PHOTO --json``,
``python -m deblur_core deblur PHOTO -o OUT [--mode M] [--strength S] [--kernel PSF.png] ...`` and
``python -m deblur_core batch INPUT... -o OUT_DIR [--jobs N] [--resume] [--scheduler tcp://HOST:8786]``
(deblur_core/batch.py: the same photo code path as ``deblur``).

Errors are one line on stderr and a non-zero exit (2: bad input or arguments, 1: processing failed);
no output file is written unless processing succeeded.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

from .vocabulary import MASKS, MODES, SHAKE_METHODS

EXIT_BAD_INPUT = 2
EXIT_FAILED = 1


class CliError(Exception):
    pass


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m deblur_core", description="AI Deblur engine")
    sub = p.add_subparsers(dest="command", required=True)
    a = sub.add_parser("analyze", help="classify the blur of a photo")
    a.add_argument("photo")
    a.add_argument("--json", action="store_true", help="print the report as JSON")
    a.add_argument("--kernel-out", help="also estimate the kernel and save it as a PNG")
    d = sub.add_parser("deblur", help="restore a photo")
    d.add_argument("photo")
    d.add_argument("-o", "--output", required=True, help="output file (.png, .tif, .jpg)")
    _add_restore_arguments(d)
    d.add_argument("--kernel", help="known PSF as a gray PNG (normalised; centre of the file = origin)")
    d.add_argument("--mask", default="auto", choices=MASKS)
    d.add_argument("--mask-out", help="write the suggested mask (16-bit gray PNG)")
    d.add_argument("--report", help="write the report as JSON")
    d.add_argument("--kernel-out", help="write the kernel used as a PNG")
    d.add_argument("--length", type=float, help="motion length in px")
    d.add_argument("--angle", type=float, help="motion angle in degrees")
    d.add_argument("--radius", type=float, help="defocus radius in px")
    d.add_argument("--kernel-size", type=int,
                   help="camera-shake kernel size in px (a guess will do: a window a quarter larger competes with it)")
    d.add_argument("--shake-regions", type=int, default=0, metavar="N",
                   help="camera shake that varies across the frame: one kernel per cell of an N x N grid, "
                        "1..4 (1: one kernel); default 0 = auto: 2 on photos at least 1024 px on the shorter "
                        "side, else 1")
    d.add_argument("--sharpen-radius", type=float)
    d.add_argument("--amount", type=float)
    d.add_argument("--threshold", type=float, default=0.0)
    d.add_argument("--grain", type=float, metavar="0-100",
                   help="old photo: how much grain to remove (0 keeps it, default 50: the measured level, 100 twice)")
    d.add_argument("--background-soften", type=float, metavar="PX",
                   help="old photo: blur of the background against grain, 0-3 px (default about 0.5; 0 = none)")
    d.add_argument("--quiet", action="store_true")
    b = sub.add_parser(
        "batch", help="restore every photo of folders (recursively) into an output folder",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Restore many photos: folders are walked recursively and their sub-folder layout is kept "
                    "under OUT_DIR; EXIF, ICC profile and XMP, bit depth and alpha are kept. Each photo is one "
                    "job; outputs are written atomically and never over an input. A photo that cannot be read "
                    "or restored is reported and the batch goes on.",
        epilog="report: one JSON line per photo (input, output, status done/failed, blur_type, verdict, action, "
               "kernel_size, seconds, warnings, error), by default OUT_DIR/batch-report.jsonl.\n"
               "exit status: 0 when every photo was restored, 1 when any failed (the count is printed), "
               "2 for bad arguments.\n"
               "Dask: pip install -r requirements-dask.txt; start a scheduler (dask scheduler) and workers "
               "(dask worker tcp://HOST:8786), both able to import deblur_core (PYTHONPATH=this repository, "
               "its venv), then --scheduler tcp://HOST:8786.")
    b.add_argument("inputs", nargs="+", metavar="INPUT", help="photos or folders (walked recursively)")
    b.add_argument("-o", "--output-dir", required=True, metavar="OUT_DIR", help="output folder (created)")
    _add_restore_arguments(b)
    b.add_argument("--jobs", "-j", type=int, default=1, metavar="N",
                   help="photos restored at once, each in its own worker process (default 1: in this "
                        "process); memory is one photo's per job")
    b.add_argument("--resume", action="store_true",
                   help="skip photos an earlier run finished: a 'done' line in the report AND the output file "
                        "present; finished outputs are left untouched and the report is appended to")
    b.add_argument("--pattern", metavar="GLOB",
                   help="which files of the folders to take, e.g. '*.jpg' (case-insensitive; default: "
                        "*.jpg *.jpeg *.png *.tif *.tiff)")
    b.add_argument("--format", default="same", choices=["png", "tif", "jpg", "same"],
                   help="output format (default: same as the input)")
    b.add_argument("--report", metavar="REPORT.jsonl", help="report file (default OUT_DIR/batch-report.jsonl)")
    b.add_argument("--scheduler", metavar="tcp://HOST:8786",
                   help="run on a Dask distributed cluster, one task per photo (optional dependency: "
                        "requirements-dask.txt); photos travel as file paths on storage the workers share")
    b.add_argument("--no-shared-storage", action="store_true",
                   help="with --scheduler: send each photo's bytes to the workers and take the output's bytes "
                        "back (workers need not see these folders)")
    b.add_argument("--quiet", action="store_true", help="no progress, only the summary")
    return p


def _add_restore_arguments(parser) -> None:
    """The restoration's choices that deblur and batch share (read back by :func:`_restore_options`)."""
    parser.add_argument("--mode", default="auto", choices=MODES)
    parser.add_argument("--strength", type=float, default=50.0, help="0..100, default 50")
    parser.add_argument("--shake-method", default=None, choices=list(SHAKE_METHODS),
                        help="camera-shake kernel estimator tried first: intensity (default; L0 intensity + "
                             "gradients, Pan et al. 2014), dark (dark channel + L0 gradients, Pan et al. 2016) or "
                             "classic (L0 gradients, Cho & Lee edges); when its kernel does not explain the photo "
                             "the others are tried in that order, then gentle sharpening")
    parser.add_argument("--classical", action="store_true", help="do not use the neural network")


def _restore_options(args) -> dict:
    """deblur()'s options from :func:`_add_restore_arguments`' arguments; CliError for a strength outside 0..100."""
    if not 0 <= args.strength <= 100:
        raise CliError("--strength must be between 0 and 100")
    return {"mode": args.mode, "strength": args.strength, "use_network": False if args.classical else None,
            **({"shake_method": args.shake_method} if args.shake_method else {})}


def _read(path):
    from .imageio import ImageReadError, read_image_meta
    from .memory import policy_for
    try:
        image, dtype, meta = read_image_meta(path)  # upright (EXIF orientation applied)
    except ImageReadError as exc:
        raise CliError(str(exc)) from None
    policy_for(image.shape[0] * image.shape[1])  # this process is ours (deblur_core/memory.py)
    return image, dtype, meta


def _check_output(path):
    ext = os.path.splitext(path)[1].lower()
    if ext not in (".png", ".tif", ".tiff", ".jpg", ".jpeg"):
        raise CliError(f"unsupported output format {ext or '(none)'!r}: use .png, .tif or .jpg")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise CliError(f"output folder does not exist: {folder}")


def cmd_analyze(args) -> int:
    from .classifier import analyze
    image, _, _ = _read(args.photo)
    report = analyze(image)
    if args.kernel_out:
        from .kernel_report import kernel_for_report
        from .kernels import save_kernel
        psf = kernel_for_report(image, report)
        report["kernel_size"] = [int(psf.shape[1]), int(psf.shape[0])]
        save_kernel(args.kernel_out, psf)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(report["summary"])
        for w in report["warnings"]:
            print(f"warning: {w}")
    return 0


def cmd_deblur(args) -> int:
    from .batch import restore_photo
    from .kernels import load_kernel, save_kernel
    _check_output(args.output)
    for extra in (args.mask_out, args.report, args.kernel_out):
        if extra:
            _check_output(extra if not extra.endswith(".json") else extra + ".png")
    image, dtype, meta = _read(args.photo)
    psf = None
    if args.kernel:
        try:
            psf = load_kernel(args.kernel)
        except Exception as exc:
            raise CliError(f"cannot use kernel {args.kernel}: {exc}") from None
        if psf.shape[0] > image.shape[0] or psf.shape[1] > image.shape[1]:
            raise CliError(f"the kernel ({psf.shape[1]}x{psf.shape[0]}) is larger than the image "
                           f"({image.shape[1]}x{image.shape[0]})")
    options = _restore_options(args)

    def progress(f, m):
        if not args.quiet:
            print(f"\r{int(f * 100):3d}% {m:<30}", end="", file=sys.stderr, flush=True)

    res, blob = restore_photo(image, dtype, meta, os.path.splitext(args.output)[1], **options, kernel=psf,
                              mask=args.mask, progress=progress, length=args.length, angle=args.angle,
                              radius=args.radius, kernel_size=args.kernel_size, sharpen_radius=args.sharpen_radius,
                              amount=args.amount, threshold=args.threshold, shake_regions=args.shake_regions or None,
                              grain=args.grain, background_soften=args.background_soften)
    if not args.quiet:
        print(file=sys.stderr)
    from .imageio import write_atomic, write_image
    write_atomic(args.output, blob)  # EXIF (orientation 1), ICC and XMP kept
    if args.mask_out:
        write_image(args.mask_out, res.mask, np.uint16 if dtype != np.uint8 else np.uint8)
    if args.kernel_out and res.kernel is not None:
        save_kernel(args.kernel_out, res.kernel)
    if args.report:
        tmp = args.report + ".part"
        with open(tmp, "w") as f:
            json.dump(res.report, f, indent=2)
        os.replace(tmp, args.report)
    if not args.quiet:
        for w in res.report.get("warnings", []):
            print(f"warning: {w}", file=sys.stderr)
        print(f"{res.report['title']} -> {args.output}", file=sys.stderr)
    return 0


def cmd_batch(args) -> int:
    from .batch import BatchError, run_batch
    options = _restore_options(args)
    if args.no_shared_storage and not args.scheduler:
        raise CliError("--no-shared-storage needs --scheduler")
    try:
        counts = run_batch(args.inputs, args.output_dir, options=options, jobs=args.jobs, resume=args.resume,
                           pattern=args.pattern, fmt=args.format, report=args.report, scheduler=args.scheduler,
                           shared_storage=not args.no_shared_storage, quiet=args.quiet)
    except BatchError as exc:
        raise CliError(str(exc)) from None
    summary = (f"{counts['done']} restored, {counts['skipped']} already done, {counts['failed']} failed "
               f"of {counts['total']} photos; report: {counts['report']}")
    print(summary, file=sys.stderr)
    if counts["failed"]:
        for name in counts["failed_inputs"]:
            print(f"failed: {name}", file=sys.stderr)
        print(f"error: {counts['failed']} photo{'s' if counts['failed'] > 1 else ''} failed", file=sys.stderr)
        return EXIT_FAILED
    return 0


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    try:
        return {"analyze": cmd_analyze, "deblur": cmd_deblur, "batch": cmd_batch}[args.command](args)
    except CliError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except MemoryError:
        print("error: not enough memory for this image", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # the contract is one line, never a traceback
        print(f"error: processing failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_FAILED
