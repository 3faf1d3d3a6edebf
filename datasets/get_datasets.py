"""Download CIFAR-10 (python version) into datasets/: verified, resumable, extracted all or nothing.

    python datasets/get_datasets.py [--url URL] [--md5 MD5] [--dest DIR] [--keep-archive]
    make data                                   (the same, with the defaults)

Leaves DIR/cifar-10-batches-py/ (DIR defaults to this folder). A mirror can be given with --url
or the environment variable CS231N_CIFAR10_URL; it is checked against the official md5 unless
--md5 gives the mirror's own. The download shows progress and, when interrupted, resumes on the
next run from the partial file DIR/cifar-10-python.tar.gz.part. The archive is extracted into a
temporary folder (refusing absolute paths, `..` and links) and renamed into place only when
complete; then it is deleted unless --keep-archive. A second run finds the folder and does
nothing.

pooch does the bookkeeping (is the file already there with the right hash? verify md5, move
into place, delete on mismatch); resumable_download.py explains why the HTTP part is ours.

Exit codes: 0 done or nothing to do, 2 bad arguments, 3 no network or the server failed,
4 checksum mismatch, 5 truncated, corrupt or unsafe archive (or a stray incomplete folder),
6 disk full, target not writable, 130 interrupted.
"""
import argparse
import errno
import os
import re
import sys
import tempfile
from pathlib import Path

import pooch
import requests

from resumable_download import IncompleteDownload, ResumableHTTPDownloader
from safe_extract import ArchiveError, extract_folder

HERE = Path(__file__).resolve().parent
OFFICIAL_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
OFFICIAL_MD5 = "c58f30108f718f92721af3b95e74349a"
URL_ENV = "CS231N_CIFAR10_URL"
ARCHIVE = "cifar-10-python.tar.gz"
FOLDER = "cifar-10-batches-py"
FILES = ("batches.meta", "data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4",
         "data_batch_5", "test_batch")
OK, NETWORK, CHECKSUM, ARCHIVE_BAD, DISK, INTERRUPTED = 0, 3, 4, 5, 6, 130


class Failure(Exception):
    """A failure with its exit code; the message is what the user reads."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code


def parse_args(argv):
    """Command-line options, with the defaults described in the module docstring."""
    parser = argparse.ArgumentParser(
        description="Download and extract CIFAR-10 (python version), verified and resumable.",
        epilog="Exit codes: 0 ok, 2 bad arguments, 3 network, 4 checksum, 5 archive, 6 disk.")
    parser.add_argument("--url", default=os.environ.get(URL_ENV) or OFFICIAL_URL,
                        help=f"where to download from (default: ${URL_ENV} or {OFFICIAL_URL})")
    parser.add_argument("--md5", default=OFFICIAL_MD5, type=_md5,
                        help=f"expected md5 of the archive (default: the official {OFFICIAL_MD5})")
    parser.add_argument("--dest", type=Path, default=HERE,
                        help=f"folder that receives {FOLDER}/ (default: {HERE})")
    parser.add_argument("--keep-archive", action="store_true",
                        help=f"keep {ARCHIVE} after extracting it")
    parser.add_argument("--timeout", type=float, default=10.0,
                        help="seconds to wait for the server to connect or send (default 10)")
    parser.add_argument("--retries", type=int, default=3,
                        help="resumes within one run after a broken connection (default 3)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser.parse_args(argv)


def _md5(text):
    if not re.fullmatch(r"[0-9a-fA-F]{32}", text):
        raise argparse.ArgumentTypeError(f"an md5 is 32 hexadecimal digits, got {text!r}")
    return text.lower()


def is_complete(folder):
    """True if `folder` holds every CIFAR-10 file."""
    return all((Path(folder) / name).is_file() for name in FILES)


def manual_steps(args):
    """How to put the archive in place by hand, for when the download cannot work."""
    return (f"To install CIFAR-10 by hand:\n"
            f"  1. on a machine with internet, download {args.url} (about 163 MB)\n"
            f"  2. check that its md5 is {args.md5}\n"
            f"     (Linux: md5sum {ARCHIVE}   macOS: md5 {ARCHIVE}   "
            f"Windows: certutil -hashfile {ARCHIVE} MD5)\n"
            f"  3. put it at {args.dest.resolve() / ARCHIVE}\n"
            f"  4. run `make data` (or python datasets/get_datasets.py) again: it checks and "
            f"extracts it.\n"
            f"To work without CIFAR-10, use the offline digits set: CS231N_DATASET=digits")


def check_writable(dest):
    """Create `dest` if needed and prove a file can be written there; Failure(DISK) if not."""
    try:
        dest.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-test-", dir=dest)
        os.close(fd)
        os.unlink(probe)
    except OSError as error:
        raise Failure(DISK, f"cannot write to {dest} ({error.strerror or error}); choose "
                            f"another folder with --dest, or fix its permissions") from error


def download(args):
    """Fetch the archive into args.dest with pooch (skipped if it is there with the right md5)."""
    part = args.dest / (ARCHIVE + ".part")
    archive = args.dest / ARCHIVE
    if archive.exists() and pooch.file_hash(str(archive), alg="md5") != args.md5:
        archive.unlink()  # pooch would replace it only once a download succeeds
        print(f"{archive} is not the expected file (its md5 is not {args.md5}: incomplete or "
              f"a different file); deleted it, downloading again.", file=sys.stderr)
    downloader = ResumableHTTPDownloader(part, timeout=args.timeout, retries=args.retries,
                                         progressbar=not args.no_progress)
    try:
        return Path(pooch.retrieve(args.url, known_hash=f"md5:{args.md5}", fname=ARCHIVE,
                                   path=args.dest, downloader=downloader))
    except requests.exceptions.RequestException as error:
        got = downloader.size()
        if got == 0:
            part.unlink(missing_ok=True)
            kept = "Nothing was written."
        else:
            kept = (f"The {got} bytes received are kept in {part}: run again to resume, "
                    f"or delete that file to start over.")
        raise Failure(NETWORK, f"Could not download {args.url}: {_reason(error)}.\n{kept}\n"
                               + manual_steps(args)) from error
    except ValueError as error:  # pooch: the hash does not match; it deleted the file
        part.unlink(missing_ok=True)
        raise Failure(CHECKSUM, f"Checksum mismatch: the file from {args.url} does not have md5 "
                                f"{args.md5}, so it was deleted.\n({error})\nIf this is a "
                                f"mirror with its own archive, give its md5 with --md5.") from error
    except OSError as error:
        if error.errno == errno.ENOSPC:
            part.unlink(missing_ok=True)
        raise _disk_failure(error, args.dest, "downloading") from error


def _reason(error):
    """A short reason for a requests error: offline, refused, timed out, or an HTTP status."""
    if isinstance(error, requests.exceptions.HTTPError) and error.response is not None:
        return f"the server answered {error.response.status_code} {error.response.reason}"
    if isinstance(error, (requests.exceptions.ChunkedEncodingError, IncompleteDownload)):
        return "the connection broke during the transfer"
    if isinstance(error, requests.exceptions.Timeout):
        return "no answer from the server in time (slow or no network?)"
    text = str(error)
    if "Name or service not known" in text or "NameResolution" in text or "getaddrinfo" in text:
        return "the server's name cannot be resolved (no network?)"
    if "refused" in text.lower():
        return "the connection was refused (no network, or a proxy/firewall?)"
    return f"the connection failed ({text})"


def _disk_failure(error, dest, doing):
    if error.errno == errno.ENOSPC:
        return Failure(DISK, f"The disk is full while {doing} into {dest}; CIFAR-10 needs about "
                             f"350 MB free (163 MB archive + 180 MB extracted). Partial files "
                             f"were removed; free some space and run again.")
    return Failure(DISK, f"Cannot write while {doing} into {dest}: {error}")


def extract(args, archive):
    """Extract the archive atomically into args.dest/FOLDER; a bad archive is deleted."""
    try:
        extract_folder(archive, args.dest, FOLDER, required=FILES)
    except ArchiveError as error:
        archive.unlink(missing_ok=True)
        raise Failure(ARCHIVE_BAD, f"{error}.\nThe archive was deleted and nothing was "
                                   f"extracted; run again to download it afresh.") from error
    except OSError as error:
        raise _disk_failure(error, args.dest, "extracting") from error


def run(args):
    """Do the whole job; returns a message for the user, or raises Failure."""
    target = args.dest / FOLDER
    if is_complete(target):
        return f"CIFAR-10 is already in {target}; nothing to do."
    if target.exists():
        missing = [name for name in FILES if not (target / name).is_file()]
        raise Failure(ARCHIVE_BAD, f"{target} exists but is incomplete (missing "
                                   f"{', '.join(missing)}), maybe from an older download "
                                   f"script; delete it and run again.")
    check_writable(args.dest)
    archive = download(args)
    extract(args, archive)
    if not args.keep_archive:
        archive.unlink()
    return f"CIFAR-10 is ready in {target}."


def main(argv=None):
    """Entry point; returns the exit code."""
    args = parse_args(argv)
    created = not args.dest.exists()
    try:
        message = run(args)
    except Failure as failure:
        if created and args.dest.is_dir() and not any(args.dest.iterdir()):
            args.dest.rmdir()  # leave no trace of a run that made nothing
        print(f"get_datasets: {failure}", file=sys.stderr, flush=True)
        return failure.code
    except KeyboardInterrupt:
        print("get_datasets: interrupted; run again to resume the download.", file=sys.stderr)
        return INTERRUPTED
    print(message, flush=True)
    return OK


if __name__ == "__main__":
    sys.exit(main())
