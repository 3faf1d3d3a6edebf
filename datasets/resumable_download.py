"""A pooch downloader that resumes an interrupted HTTP download with a Range request.

Why not pooch's own HTTPDownloader: pooch (checked in 1.9.0, `core.stream_download` and
`downloaders.HTTPDownloader`) streams every attempt into a fresh temporary file, opens it with
"w+b", sends no Range header and deletes the file when the transfer fails, so a broken 163 MB
download always starts again from zero. pooch does accept any callable
`downloader(url, output_file, pooch)`, so this one keeps the bytes in a stable `.part` file,
asks the server only for the rest (`Range: bytes=N-`), and hands the finished file to pooch,
which still checks the hash and moves it into place. A server that ignores the Range header
(answers 200) simply restarts the file. The progress bar is tqdm, as pooch's, started at N.
"""
import os
import re
from pathlib import Path

import requests
from tqdm.auto import tqdm


class IncompleteDownload(requests.exceptions.ConnectionError):
    """The server closed the connection before sending the whole file."""


# what a connection that breaks mid-transfer raises (ChunkedEncodingError: "IncompleteRead")
BROKEN = (requests.exceptions.ConnectionError, requests.exceptions.Timeout,
          requests.exceptions.ChunkedEncodingError)


class ResumableHTTPDownloader:
    """pooch downloader: `ResumableHTTPDownloader(part)(url, output_file, pooch)`.

    Inputs: part, path of the partial file kept between runs; timeout, seconds (or a
    (connect, read) pair) for requests; retries, how many times to resume within one call after
    a broken connection that had delivered bytes (a connection that delivers nothing is not
    retried, so an offline machine fails at once); progressbar, bool.
    """

    def __init__(self, part, timeout=(10, 60), retries=3, progressbar=True, chunk_size=1 << 13):
        self.part = Path(part)
        self.timeout = timeout
        self.retries = retries
        self.progressbar = progressbar
        self.chunk_size = chunk_size

    def size(self):
        """Bytes already in the partial file (0 if there is none)."""
        return self.part.stat().st_size if self.part.exists() else 0

    def __call__(self, url, output_file, pooch=None):
        if self.size():
            print(f"resuming {self.part.name} after {self.size()} bytes", flush=True)
        resumes = 0
        while True:
            before = self.size()
            try:
                self._fetch_rest(url)
                break
            except BROKEN:
                if self.size() <= before or resumes >= self.retries:
                    raise
                resumes += 1
                print(f"connection lost after {self.size()} bytes; resuming "
                      f"({resumes} of {self.retries})", flush=True)
        os.replace(self.part, output_file)

    def _fetch_rest(self, url):
        """Append the bytes the server has beyond those in the partial file."""
        have = self.size()
        headers = {"Accept-Encoding": "identity"}
        if have:
            headers["Range"] = f"bytes={have}-"
        with requests.get(url, headers=headers, stream=True, timeout=self.timeout) as response:
            if response.status_code == 416:  # nothing left to send: the part is whole or too long
                total = re.fullmatch(r"bytes \*/(\d+)", response.headers.get("Content-Range", ""))
                if total and int(total.group(1)) == have:
                    return
                self.part.unlink()
                return self._fetch_rest(url)
            response.raise_for_status()
            if have and response.status_code != 206:  # Range ignored: the whole file comes
                have = 0
            elif have and _range_start(response) != have:  # some other range: start again
                self.part.unlink()
                return self._fetch_rest(url)
            length = response.headers.get("Content-Length")
            total = have + int(length) if length is not None else None
            with open(self.part, "ab" if have else "wb") as out, tqdm(
                    total=total, initial=have, unit="B", unit_scale=True, unit_divisor=1024,
                    desc=self.part.name.removesuffix(".part"), disable=not self.progressbar,
                    leave=True) as progress:
                for chunk in response.iter_content(chunk_size=self.chunk_size):
                    out.write(chunk)
                    progress.update(len(chunk))
        if total is not None and self.size() != total:
            raise IncompleteDownload(f"got {self.size()} of {total} bytes from {url}")


def _range_start(response):
    """First byte of a 206 answer, from its Content-Range header (-1 if unreadable)."""
    match = re.match(r"bytes (\d+)-", response.headers.get("Content-Range", ""))
    return int(match.group(1)) if match else -1
