"""python-blob-bench: the Python package's blobs against the Rust client and the seed-004 design.

Run with (from the workspace root):
    nice -n 19 cargo build --release -p steadfast-examples -p steadfast-benches \
        --bin lab-server --bin lab-client --bin blob-bench
    PYTHONPATH=python/src python benches/python/blob_bench.py --rounds 3

A 1 GiB upload to lab-server's ``Digest`` and a 1 GiB ``Fetch`` download, each
by three contenders, each run as a process of its own (its peak RSS is that
transfer's, read with ``wait4``), in interleaved rounds whose order rotates:

- ``package``: ``Service.call("Digest", ..., blob=BlobSource.from_path(f))`` and
  ``Service.download("Fetch", ...)`` then ``BlobReader.to_file``;
- ``rust``: ``lab-client digest FILE`` and ``lab-client fetch --out FILE``;
- ``seed004``: aipod's design (seed 004) on the same wire, one thread: the upload
  compresses the whole file with zstd (level 3, one frame with its content
  checksum) into a temporary file, then reads it back and sends it in 32 KiB
  chunks (aipod's ``io.DEFAULT_BUFFER_SIZE * 4``); the download writes every
  chunk to a temporary file, then decompresses that file at the end.

The upload's input is the Rust benches' compressible payload (JSON-like log
lines a quarter random bytes, about 2.4:1 under zstd -3), written once per size
by ``blob-bench dump compressible``. The download is what ``Fetch`` serves: the
examples' content generator in its only flavor there, incompressible bytes
(which steadfast's ``codec=auto`` sends raw, with an XXH3-64 checksum). MB/s is 10^6 payload bytes per second of the contender's process, from
its start to its exit (the interpreter's start and imports included). Every
upload's SHA-256 and every download's size are checked, and each download's
SHA-256 in the first round. Files go to a temporary directory, removed at the end.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

REPO = Path(__file__).resolve().parents[2]
CONTENDERS = ("package", "rust", "seed004")
# aipod's buffer: io.DEFAULT_BUFFER_SIZE * 4.
SEED004_CHUNK = 32 * 1024
SEED = 7
FRAMING = ("steadfast-framing", "v1")


# ---------------------------------------------------------------------------
# Workers: each transfer, in a process of its own.


def worker(args: argparse.Namespace) -> None:
    sys.path.insert(0, args.gen)
    import grpc

    started = time.monotonic()
    # The package's downloads with the channel options it recommends for them.
    options = []
    if args.worker == "package_download":
        import steadfast.blob

        options = steadfast.blob.DOWNLOAD_CHANNEL_OPTIONS
    with grpc.insecure_channel(args.addr, options=options) as channel:
        out = WORKERS[args.worker](channel, args)
    out["inner_s"] = time.monotonic() - started
    print(json.dumps(out), flush=True)


def package_upload(channel: Any, args: argparse.Namespace) -> Dict[str, Any]:
    import steadfast
    from lab.v1 import lab_pb2, lab_pb2_grpc

    lab = steadfast.Service(lab_pb2_grpc.LabStub(channel), "lab.v1.Lab", steadfast.Manifest.load(args.manifest))
    reply = lab.call("Digest", lab_pb2.DigestRequest(), blob=steadfast.BlobSource.from_path(args.file), timeout=600)
    return {"size": reply.size, "sha256": reply.sha256_hex}


def package_download(channel: Any, args: argparse.Namespace) -> Dict[str, Any]:
    import steadfast
    from lab.v1 import lab_pb2, lab_pb2_grpc

    lab = steadfast.Service(lab_pb2_grpc.LabStub(channel), "lab.v1.Lab", steadfast.Manifest.load(args.manifest))
    _, blob = lab.download("Fetch", lab_pb2.FetchRequest(size=args.size, seed=SEED), timeout=600)
    return {"size": blob.to_file(args.file)}


def seed004_upload(channel: Any, args: argparse.Namespace) -> Dict[str, Any]:
    import zstandard
    from lab.v1 import lab_pb2, lab_pb2_grpc
    from steadfast.v1 import frame_pb2

    size = os.path.getsize(args.file)
    with tempfile.TemporaryDirectory(dir=args.tmp) as work:
        compressed = os.path.join(work, "compressed")
        cctx = zstandard.ZstdCompressor(level=3, write_checksum=True)
        with open(args.file, "rb") as src, open(compressed, "wb") as dst:
            cctx.copy_stream(src, dst, size=size)

        def requests() -> Any:
            yield lab_pb2.LabDigestUpload(head=lab_pb2.DigestRequest())
            yield lab_pb2.LabDigestUpload(blob=frame_pb2.BlobHeader(size=size, codec=frame_pb2.CODEC_ZSTD))
            total = os.path.getsize(compressed)
            offset = 0
            with open(compressed, "rb") as file:
                while True:
                    data = file.read(SEED004_CHUNK)
                    last = offset + len(data) >= total
                    yield lab_pb2.LabDigestUpload(chunk=frame_pb2.Chunk(data=data, offset=offset, last=last))
                    offset += len(data)
                    if last:
                        break

        reply = None
        for frame in lab_pb2_grpc.LabStub(channel).Digest(requests(), metadata=[FRAMING], timeout=600):
            if frame.WhichOneof("kind") == "message":
                reply = frame.message
    assert reply is not None, "Digest ended without its reply"
    return {"size": reply.size, "sha256": reply.sha256_hex}


def seed004_download(channel: Any, args: argparse.Namespace) -> Dict[str, Any]:
    import zstandard
    from lab.v1 import lab_pb2, lab_pb2_grpc
    from steadfast.v1 import frame_pb2

    stub = lab_pb2_grpc.LabStub(channel)
    with tempfile.TemporaryDirectory(dir=args.tmp) as work:
        compressed = os.path.join(work, "compressed")
        codec = None
        with open(compressed, "wb") as file:
            for frame in stub.Fetch(lab_pb2.FetchRequest(size=args.size, seed=SEED), metadata=[FRAMING], timeout=600):
                kind = frame.WhichOneof("kind")
                if kind == "blob":
                    codec = frame.blob.codec
                elif kind == "chunk":
                    file.write(frame.chunk.data)
        with open(compressed, "rb") as src, open(args.file, "wb") as dst:
            if codec == frame_pb2.CODEC_ZSTD:
                zstandard.ZstdDecompressor().copy_stream(src, dst)
            else:
                shutil.copyfileobj(src, dst)
    return {"size": os.path.getsize(args.file)}


WORKERS = {
    "package-upload": package_upload,
    "package-download": package_download,
    "seed004-upload": seed004_upload,
    "seed004-download": seed004_download,
}


# ---------------------------------------------------------------------------
# The driver.


def run_measured(cmd: List[str], env: Optional[Dict[str, str]] = None) -> Tuple[float, float, str]:
    """Runs ``cmd``; returns its wall seconds, its peak RSS (MiB) and its stdout."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.monotonic()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.monotonic() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            raise RuntimeError(f"{cmd} failed ({proc.returncode}): {err.read().decode()[-2000:]}")
        return wall, usage.ru_maxrss / 1024, out.read().decode()


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as file:
        while True:
            block = file.read(1 << 20)
            if not block:
                return h.hexdigest()
            h.update(block)


class Bench:
    def __init__(self, args: argparse.Namespace, tmp: Path) -> None:
        self.args = args
        self.tmp = tmp
        self.bins = Path(args.bin_dir)
        self.gen = tmp / "gen"
        self.wire = tmp / "wire"
        self.env = dict(os.environ)
        src = str(REPO / "python" / "src")
        self.env["PYTHONPATH"] = os.pathsep.join(p for p in (src, self.env.get("PYTHONPATH", "")) if p)

    def generate(self) -> None:
        subprocess.run([self.args.codegen, "wire", "-I", str(REPO / "examples" / "proto"), "--out", str(self.wire),
                        str(REPO / "examples" / "proto" / "lab" / "v1" / "lab.proto")], check=True,
                       stdout=subprocess.DEVNULL)
        self.gen.mkdir()
        subprocess.run([sys.executable, "-m", "grpc_tools.protoc", f"-I{self.wire}", f"--python_out={self.gen}",
                        f"--grpc_python_out={self.gen}", "lab/v1/lab.proto"], check=True)

    def py(self, kind: str, file: Path, size: int) -> List[str]:
        return [sys.executable, str(Path(__file__).resolve()), "--worker", kind, "--addr", self.addr,
                "--gen", str(self.gen), "--manifest", str(self.wire / "steadfast.json"),
                "--file", str(file), "--size", str(size), "--tmp", str(self.tmp)]

    def command(self, contender: str, direction: str, file: Path, size: int) -> List[str]:
        if contender == "rust":
            client = [str(self.bins / "lab-client"), "--addr", f"http://{self.addr}"]
            if direction == "upload":
                return client + ["digest", str(file)]
            return client + ["fetch", "--out", str(file), str(size), str(SEED)]
        return self.py(f"{contender}-{direction}", file, size)

    def transfer(self, contender: str, direction: str, size: int, check_sha: bool) -> Dict[str, Any]:
        src = self.inputs[size]
        out = self.tmp / f"out-{contender}"
        file = src if direction == "upload" else out
        wall, rss, stdout = run_measured(self.command(contender, direction, file, size), self.env)
        if direction == "upload":
            if contender == "rust":
                got_size, sha = stdout.split()[:2]
                got = {"size": int(got_size), "sha256": sha}
            else:
                got = json.loads(stdout)
            assert got["size"] == size and got["sha256"] == self.sha[("upload", size)], (contender, got)
        else:
            assert out.stat().st_size == size, (contender, out.stat().st_size)
            if check_sha:
                assert sha256_file(out) == self.sha[("download", size)], f"{contender} downloaded other bytes"
            out.unlink()
        return {"mbps": size / wall / 1e6, "rss": rss, "wall": wall}

    def main(self) -> None:
        args = self.args
        self.generate()
        server = subprocess.Popen([str(self.bins / "lab-server"), "--addr", "127.0.0.1:0", "--name", "bench"],
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        try:
            assert server.stdout is not None
            line = server.stdout.readline().decode()
            self.addr = line.rsplit(" ", 1)[-1].strip()
            sizes = [mib << 20 for mib in args.sizes_mib]
            self.inputs: Dict[int, Path] = {}
            self.sha: Dict[Tuple[str, int], str] = {}
            for size in sizes:
                # The upload's input: the Rust benches' log lines (blob-bench's generator).
                path = self.tmp / f"input-{size >> 20}MiB"
                with open(path, "wb") as file:
                    subprocess.run([args.blob_bench, "dump", "compressible", "--size-mib", str(size >> 20),
                                    "--seed", str(SEED)], check=True, stdout=file)
                self.inputs[size] = path
                self.sha[("upload", size)] = sha256_file(path)
                # What Fetch sends, for the downloads' check (the Rust client's copy,
                # verified by its XXH3 checksum on the way).
                reference = self.tmp / "reference"
                subprocess.run([str(self.bins / "lab-client"), "--addr", f"http://{self.addr}", "fetch",
                                "--out", str(reference), str(size), str(SEED)], check=True, stdout=subprocess.DEVNULL)
                self.sha[("download", size)] = sha256_file(reference)
                reference.unlink()
            results: Dict[Tuple[int, str, str], List[Dict[str, Any]]] = {}
            for size in sizes:
                rounds = args.rounds if size == max(sizes) else args.small_rounds
                for r in range(rounds):
                    order = CONTENDERS[r % 3:] + CONTENDERS[: r % 3]
                    for direction in ("upload", "download"):
                        for contender in order:
                            got = self.transfer(contender, direction, size, check_sha=(r == 0))
                            results.setdefault((size, direction, contender), []).append(got)
                            print(f"{size >> 20} MiB {direction:8} round {r + 1} {contender:8} "
                                  f"{got['mbps']:7.1f} MB/s  peak {got['rss']:6.1f} MiB  {got['wall']:6.2f} s",
                                  flush=True)
            report(results, sizes)
        finally:
            server.kill()
            server.wait()


def report(results: Dict[Tuple[int, str, str], List[Dict[str, Any]]], sizes: List[int]) -> None:
    big = max(sizes)
    print()
    for direction in ("upload", "download"):
        for size in sizes:
            for contender in CONTENDERS:
                rows = results[(size, direction, contender)]
                mbps = [r["mbps"] for r in rows]
                print(f"{direction:8} {size >> 20:5} MiB {contender:8} median {statistics.median(mbps):7.1f} MB/s "
                      f"(rounds {', '.join(f'{m:.1f}' for m in mbps)}), peak RSS max "
                      f"{max(r['rss'] for r in rows):.1f} MiB")
        pkg = results[(big, direction, "package")]
        for peer in ("rust", "seed004"):
            ratios = [p["mbps"] / q["mbps"] for p, q in zip(pkg, results[(big, direction, peer)])]
            medians = statistics.median(r["mbps"] for r in pkg) / statistics.median(
                r["mbps"] for r in results[(big, direction, peer)])
            print(f"{direction:8} package / {peer:8}: per-round {', '.join(f'{x:.2f}' for x in ratios)}; "
                  f"median of per-round {statistics.median(ratios):.2f}, ratio of medians {medians:.2f}")
    print(json.dumps({f"{s >> 20}MiB/{d}/{c}": v for (s, d, c), v in results.items()}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="rounds at the largest size")
    parser.add_argument("--small-rounds", type=int, default=1, help="rounds at the smaller sizes (memory)")
    parser.add_argument("--sizes-mib", type=int, nargs="+", default=[64, 1024])
    parser.add_argument("--bin-dir", default=str(REPO / "target" / "release"),
                        help="lab-server and lab-client (release builds)")
    parser.add_argument("--blob-bench", default=str(REPO / "target" / "release" / "blob-bench"),
                        help="blob-bench, whose `dump compressible` writes the upload's input")
    parser.add_argument("--codegen", default=shutil.which("steadfast-codegen") or str(REPO / "target" / "debug" / "steadfast-codegen"),
                        help="steadfast-codegen, for the lab wire protos")
    parser.add_argument("--tmp-dir", default="/tmp", help="where the payload files go (removed at the end)")
    # Worker mode (internal).
    parser.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    for hidden in ("--addr", "--gen", "--manifest", "--file", "--tmp"):
        parser.add_argument(hidden, help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    tmp = Path(tempfile.mkdtemp(prefix="python-blob-bench-", dir=args.tmp_dir))
    try:
        Bench(args, tmp).main()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
