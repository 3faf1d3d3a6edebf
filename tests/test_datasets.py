"""datasets/get_datasets.py against a local HTTP server: download, verify, resume, extract, fail.

No test touches the internet: archives in CIFAR-10's exact format are built here and served on
127.0.0.1 (see test_datasets_support.py).
"""
import errno
import os
import socket
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest

from test_datasets_support import (BATCHES, FOLDER, REPO, FileServer, batch_labels,
                                   cifar_archive, closed_port, md5, pattern)

import get_datasets as gd  # noqa: E402  (on sys.path thanks to test_datasets_support)
from cs231n.data_utils import get_CIFAR10_data, load_CIFAR10

ARCHIVE = "cifar-10-python.tar.gz"
SCRIPT = REPO / "datasets" / "get_datasets.py"
ROWS = 20


@pytest.fixture(scope="module")
def small_archive():
    return cifar_archive(ROWS)


@pytest.fixture
def server(small_archive):
    with FileServer({ARCHIVE: small_archive}) as srv:
        yield srv


def fetch(srv, dest, *extra, name=ARCHIVE, md5sum=None):
    """Run the downloader in-process against `srv`; returns the exit code."""
    md5sum = md5sum or md5(srv.files[name])
    return gd.main(["--url", srv.url(name), "--md5", md5sum, "--dest", str(dest),
                    "--no-progress", *extra])


def listing(folder):
    """Every path under `folder`, relative, sorted (hidden temporary files included)."""
    return sorted(str(p.relative_to(folder)) for p in Path(folder).rglob("*"))


def complete_listing():
    return sorted([FOLDER] + [f"{FOLDER}/{n}" for n in BATCHES + ["batches.meta", "readme.html"]])


def test_full_size_archive_downloads_verifies_extracts_and_loads(tmp_path, capfd):
    """10000 images a batch, as the real archive: the loaders see every pixel where it belongs."""
    archive = cifar_archive(10000)
    with FileServer({ARCHIVE: archive}) as srv:
        assert gd.main(["--url", srv.url(ARCHIVE), "--md5", md5(archive),
                        "--dest", str(tmp_path)]) == 0
    err = capfd.readouterr().err
    assert "100%" in err  # the progress bar ran to the end
    assert listing(tmp_path) == complete_listing()  # archive deleted, no temporary left

    X_train, y_train, X_test, y_test = load_CIFAR10(tmp_path / FOLDER)
    assert X_train.shape == (50000, 3, 32, 32) and X_train.dtype == np.uint8
    assert X_test.shape == (10000, 3, 32, 32) and y_test.dtype == np.int64
    np.testing.assert_array_equal(y_train, sum((batch_labels(i, 10000) for i in range(5)), []))
    np.testing.assert_array_equal(y_test, batch_labels(5, 10000))
    assert np.array_equal(X_train, pattern(y_train)), "pixels moved: expected (c, h, w) order"
    assert np.array_equal(X_test, pattern(y_test)), "pixels moved: expected (c, h, w) order"

    data = get_CIFAR10_data(cifar10_dir=tmp_path / FOLDER)
    shapes = {key: value.shape for key, value in data.items()}
    assert shapes == {"X_train": (49000, 3, 32, 32), "y_train": (49000,),
                      "X_val": (1000, 3, 32, 32), "y_val": (1000,),
                      "X_test": (1000, 3, 32, 32), "y_test": (1000,)}
    assert data["X_train"].dtype == np.float32
    mean = X_train[:49000].mean(axis=0)
    np.testing.assert_allclose(data["X_val"], X_train[49000:] - mean, atol=1e-3)
    np.testing.assert_array_equal(data["y_val"], y_train[49000:])
    assert "CIFAR-10" in capfd.readouterr().out


def test_second_run_does_nothing(server, tmp_path, capsys):
    assert fetch(server, tmp_path) == 0
    stamp = (tmp_path / FOLDER / "data_batch_1").stat().st_mtime_ns
    served = len(server.requests)
    capsys.readouterr()
    assert fetch(server, tmp_path) == 0
    assert "nothing to do" in capsys.readouterr().out
    assert len(server.requests) == served  # no request at all
    assert (tmp_path / FOLDER / "data_batch_1").stat().st_mtime_ns == stamp
    assert listing(tmp_path) == complete_listing()


def test_keep_archive_keeps_the_verified_archive(server, tmp_path):
    assert fetch(server, tmp_path, "--keep-archive") == 0
    assert (tmp_path / ARCHIVE).read_bytes() == server.files[ARCHIVE]


def test_dropped_connection_then_rerun_resumes(server, tmp_path, capsys):
    size = len(server.files[ARCHIVE])
    server.drop_next = 1
    assert fetch(server, tmp_path, "--retries", "0") == gd.NETWORK
    err = capsys.readouterr().err
    part = tmp_path / (ARCHIVE + ".part")
    assert "run again to resume" in err
    assert listing(tmp_path) == [part.name]  # only the resumable part, nothing extracted
    got = part.stat().st_size
    assert 0 < got < size

    assert fetch(server, tmp_path) == 0
    assert server.requests[-1] == (f"/{ARCHIVE}", f"bytes={got}-")  # asked only for the rest
    assert listing(tmp_path) == complete_listing()


def test_dropped_connection_resumes_within_one_run(server, tmp_path, capsys):
    server.drop_next = 2
    assert fetch(server, tmp_path) == 0
    ranges = [r for _, r in server.requests]
    assert ranges[0] is None and all(r.startswith("bytes=") for r in ranges[1:])
    assert len(ranges) == 3
    assert "resuming" in capsys.readouterr().out
    assert listing(tmp_path) == complete_listing()


def test_server_that_ignores_range_restarts_the_file(server, tmp_path):
    """A partial file and a server answering 200 to a Range request: the file starts over."""
    (tmp_path / (ARCHIVE + ".part")).write_bytes(b"garbage that is not the archive")
    original = server.httpd.RequestHandlerClass.do_GET

    def no_range(handler):
        del handler.headers["Range"]
        original(handler)

    server.httpd.RequestHandlerClass.do_GET = no_range
    assert fetch(server, tmp_path) == 0
    assert listing(tmp_path) == complete_listing()


def test_complete_part_file_is_finished_without_downloading_again(server, tmp_path):
    (tmp_path / (ARCHIVE + ".part")).write_bytes(server.files[ARCHIVE])
    assert fetch(server, tmp_path) == 0
    assert server.requests == [(f"/{ARCHIVE}", f"bytes={len(server.files[ARCHIVE])}-")]
    assert listing(tmp_path) == complete_listing()


def test_wrong_checksum_is_an_error_and_leaves_no_file(server, tmp_path, capsys):
    assert fetch(server, tmp_path, md5sum="0" * 32) == gd.CHECKSUM
    err = capsys.readouterr().err
    assert "Checksum mismatch" in err and "deleted" in err and "0" * 32 in err
    assert listing(tmp_path) == []


def test_archive_put_in_place_by_hand_is_extracted_without_network(small_archive, tmp_path):
    (tmp_path / ARCHIVE).write_bytes(small_archive)
    code = gd.main(["--url", f"http://127.0.0.1:{closed_port()}/{ARCHIVE}", "--md5",
                    md5(small_archive), "--dest", str(tmp_path), "--no-progress"])
    assert code == 0 and listing(tmp_path) == complete_listing()


def test_wrong_archive_put_in_place_is_deleted_and_fetched_again(server, tmp_path, capsys):
    (tmp_path / ARCHIVE).write_bytes(server.files[ARCHIVE][:1000])  # e.g. a cut-off download
    assert fetch(server, tmp_path) == 0
    assert "deleted it, downloading again" in capsys.readouterr().err
    assert listing(tmp_path) == complete_listing()


def test_mirror_url_from_environment(server, tmp_path, monkeypatch):
    monkeypatch.setenv(gd.URL_ENV, server.url(ARCHIVE))
    code = gd.main(["--md5", md5(server.files[ARCHIVE]), "--dest", str(tmp_path), "--no-progress"])
    assert code == 0 and server.requests[0][0] == f"/{ARCHIVE}"


@pytest.mark.parametrize("member", [
    ("../escaped.txt", b"outside", tarfile.REGTYPE, ""),
    (f"{FOLDER}/../../escaped.txt", b"outside", tarfile.REGTYPE, ""),
    ("/tmp/cs231n-absolute-escaped.txt", b"outside", tarfile.REGTYPE, ""),
    (f"{FOLDER}/link", b"", tarfile.SYMTYPE, "../../escaped.txt"),
    (f"{FOLDER}/hardlink", b"", tarfile.LNKTYPE, "/etc/passwd"),
    ("elsewhere/file.txt", b"outside the folder", tarfile.REGTYPE, ""),
], ids=["dotdot", "nested-dotdot", "absolute", "symlink", "hardlink", "other-folder"])
def test_unsafe_archive_is_refused_and_nothing_written(member, tmp_path, capsys):
    dest = tmp_path / "dest"
    evil = cifar_archive(ROWS, extra=[member])
    with FileServer({ARCHIVE: evil}) as srv:
        assert fetch(srv, dest) == gd.ARCHIVE_BAD
    assert "refused" in capsys.readouterr().err
    assert listing(tmp_path) == []  # nothing extracted, the archive and the new folder deleted
    assert not Path("/tmp/cs231n-absolute-escaped.txt").exists()


@pytest.mark.parametrize("damage", ["truncated", "not-gzip", "missing-batch"])
def test_corrupt_archive_is_an_error_and_leaves_nothing(damage, small_archive, tmp_path, capsys):
    if damage == "truncated":
        data = small_archive[: len(small_archive) // 2]
    elif damage == "not-gzip":
        data = b"<html>a captive portal page instead of the archive</html>"
    else:
        data = _without_member(small_archive, f"{FOLDER}/test_batch")
    with FileServer({ARCHIVE: data}) as srv:  # a mirror whose md5 matches its own bad file
        assert fetch(srv, tmp_path) == gd.ARCHIVE_BAD
    err = capsys.readouterr().err
    assert ("truncated or corrupt" in err) or ("lacks test_batch" in err)
    assert listing(tmp_path) == []


def _without_member(archive, name):
    import io
    out = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(archive)) as src, \
            tarfile.open(fileobj=out, mode="w:gz") as dst:
        for info in src.getmembers():
            if info.name != name:
                dst.addfile(info, src.extractfile(info) if info.isfile() else None)
    return out.getvalue()


def test_http_error_prints_manual_steps(server, tmp_path, capsys):
    assert fetch(server, tmp_path, name="missing.tar.gz", md5sum="a" * 32) == gd.NETWORK
    err = capsys.readouterr().err
    assert "404" in err and "by hand" in err
    assert listing(tmp_path) == []


def test_full_disk_while_downloading_removes_the_partial_file(server, tmp_path, capsys):
    if not Path("/dev/full").exists():
        pytest.skip("needs /dev/full to simulate a full disk")
    (tmp_path / (ARCHIVE + ".part")).symlink_to("/dev/full")  # every write: ENOSPC
    assert fetch(server, tmp_path) == gd.DISK
    assert "disk is full" in capsys.readouterr().err
    assert listing(tmp_path) == []


def test_full_disk_while_extracting_cleans_up(server, tmp_path, capsys, monkeypatch):
    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(tarfile.TarFile, "extractall", no_space)
    assert fetch(server, tmp_path) == gd.DISK
    assert "disk is full" in capsys.readouterr().err
    assert listing(tmp_path) == [ARCHIVE]  # the verified archive stays; no half folder
    monkeypatch.undo()
    assert fetch(server, tmp_path) == 0  # space freed: the rerun only extracts
    assert len(server.requests) == 1


def test_target_that_is_a_file_is_refused(server, tmp_path, capsys):
    dest = tmp_path / "afile"
    dest.write_text("not a folder")
    assert fetch(server, dest) == gd.DISK
    assert "cannot write" in capsys.readouterr().err
    assert server.requests == []


def test_non_writable_target_is_refused(server, tmp_path, capsys):
    dest = tmp_path / "readonly"
    dest.mkdir()
    if os.geteuid() == 0:  # root ignores permissions; the immutable flag stops even root
        if subprocess.run(["chattr", "+i", str(dest)], capture_output=True).returncode:
            pytest.skip("running as root and chattr +i is unavailable")
    else:
        dest.chmod(0o555)
    try:
        assert fetch(server, dest) == gd.DISK
    finally:
        if os.geteuid() == 0:
            subprocess.run(["chattr", "-i", str(dest)], check=True)
        dest.chmod(0o755)
    assert "cannot write" in capsys.readouterr().err
    assert listing(dest) == [] and server.requests == []


def test_stray_incomplete_folder_is_reported(server, tmp_path, capsys):
    (tmp_path / FOLDER).mkdir()
    (tmp_path / FOLDER / "data_batch_1").write_bytes(b"half of an old download")
    assert fetch(server, tmp_path) == gd.ARCHIVE_BAD
    assert "incomplete" in capsys.readouterr().err and server.requests == []


def test_bad_md5_argument_is_a_usage_error(tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        gd.main(["--md5", "not-an-md5", "--dest", str(tmp_path)])
    assert exit_info.value.code == 2


def run_script(*args, env_extra=None):
    """The real command line, as a student runs it; guarded so that a hang fails the test."""
    env = {k: v for k, v in os.environ.items() if k != gd.URL_ENV}
    env.update(env_extra or {})
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True,
                          timeout=30, env=env)


def assert_manual_steps(result, url, dest):
    assert result.returncode == gd.NETWORK
    for needed in (url, gd.OFFICIAL_MD5, str(dest.resolve() / ARCHIVE), "by hand"):
        assert needed in result.stderr, f"{needed!r} missing from:\n{result.stderr}"


def test_script_without_network_exits_with_manual_steps(tmp_path):
    dest = tmp_path / "new"
    url = f"http://127.0.0.1:{closed_port()}/{ARCHIVE}"
    result = run_script("--url", url, "--dest", str(dest), "--timeout", "5")
    assert_manual_steps(result, url, dest)
    assert "Nothing was written" in result.stderr
    assert not dest.exists() and listing(tmp_path) == []


def _internet_reachable():
    try:
        socket.getaddrinfo("www.cs.toronto.edu", 443)
    except OSError:
        return False
    return True


@pytest.mark.skipif(_internet_reachable(), reason="the official host resolves: this machine is "
                    "online, and the test must not download 163 MB")
def test_script_with_default_url_offline_exits_with_manual_steps(tmp_path):
    result = run_script("--dest", str(tmp_path), "--timeout", "5")
    assert_manual_steps(result, gd.OFFICIAL_URL, tmp_path)
    assert listing(tmp_path) == []
