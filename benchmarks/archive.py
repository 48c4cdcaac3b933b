"""Archive benchmark: put and get MB/s of a large model on local disk and on S3 (moto), vs ``cp``; verify speed.

Run: ``.venv/bin/python -m benchmarks.archive [--size-mib 1024]``. Every archive operation runs in its own
child process so that its peak RSS (VmHWM) is its own. ``cp`` copies the same file on the same disk in
the same run; ``cp + fsync`` adds the durability the archive gives each put (it fsyncs every file).
The S3 figures are against moto's standalone server on loopback (a Python server: they measure the
client's streaming and memory, not a production object store's throughput).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

MIB = 1024 * 1024
S3_KEY_ID = "AKIABENCHMARK000001"
S3_SECRET = "benchmark-secret-0123456789"


def _peak_rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024.0
    return 0.0


def _server_url() -> str:
    from cim.db.cluster import PrivateCluster
    from cim.db.scratch import database_on

    external = os.environ.get("DATABASE_URL")
    if external:
        return database_on(external, "postgres")
    return database_on(PrivateCluster(Path(os.environ.get("CIM_DATA_DIR", ".cim"))).up(), "postgres")


def make_model(path: Path, size_mib: int) -> Path:
    """A syntactically plausible IFC-SPF file of ``size_mib`` MiB (header, then comment lines)."""
    head = b"ISO-10303-21;\nHEADER;\nFILE_DESCRIPTION(('bench'),'2;1');\nFILE_NAME('b.ifc','',(''),(''),'','','');\n"
    head += b"FILE_SCHEMA(('IFC4'));\nENDSEC;\nDATA;\n"
    block = bytearray()
    line = 0
    while len(block) < MIB:
        block += f"/* {line:08d} ".encode() + os.urandom(48).hex().encode() + b" */\n"
        line += 1
    with path.open("wb") as fh:
        fh.write(head)
        for i in range(size_mib):
            fh.write(bytes(block[:-16]) + f"{i:014d}\n".encode())
        fh.write(b"ENDSEC;\nEND-ISO-10303-21;\n")
    return path


def _storage_settings(backend: str, endpoint: str | None, bucket: str | None) -> Any:
    from pydantic import SecretStr

    from cim.storage import StorageSettings

    if backend == "local":
        return StorageSettings()
    return StorageSettings(
        backend="s3",
        endpoint=endpoint,
        bucket=bucket,
        access_key_id=SecretStr(S3_KEY_ID),
        secret_access_key=SecretStr(S3_SECRET),
    )


def child(
    op: str, backend: str, db_url: str, workdir: Path, endpoint: str | None, bucket: str | None
) -> dict[str, Any]:
    """One archive operation in this process: put, get or verify; seconds and peak RSS."""
    from cim.archive import Archive, verify
    from cim.db.engine import make_engine
    from cim.settings import Settings

    engine = make_engine(db_url)
    settings = Settings(data_dir=workdir / "data", database_url=db_url)
    archive = Archive.open(engine, settings, storage_settings=_storage_settings(backend, endpoint, bucket))
    source = workdir / "model.ifc"
    key = f"bench-{backend}"
    started = time.perf_counter()
    if op == "put":
        info = archive.put(source, model_key=key, author="bench")
        size = int(info.size_bytes or 0)
    elif op == "get":
        out = workdir / f"got-{backend}.ifc"
        info = archive.get_to(key, None, out, actor="bench")
        size = out.stat().st_size
        out.unlink()
    else:
        report = verify(archive, key)
        if report.problems:
            raise SystemExit(f"verify found problems: {report.problems}")
        size = report.bytes
    seconds = time.perf_counter() - started
    engine.dispose()
    return {"op": op, "backend": backend, "seconds": seconds, "bytes": size, "peak_rss_mib": _peak_rss_mib()}


def hash_rates() -> str:
    """MB/s of each digest a put computes, measured now on 64 MiB (the put is bound by the slowest)."""
    import hashlib

    data = os.urandom(64 * MIB)
    parts = []
    for name in ("sha512", "sha256", "sm3"):
        h = hashlib.new(name)
        started = time.perf_counter()
        h.update(data)
        parts.append(f"{name} {64 * MIB / 1e6 / (time.perf_counter() - started):.0f} MB/s")
    return ", ".join(parts)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _timed(cmd: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(cmd, check=True)
    return time.perf_counter() - started


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description="Archive benchmark (put/get MB/s vs cp, peak RSS, verify MB/s)")
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--dir", type=Path, default=Path(".cim"), help="folder on the disk to measure")
    parser.add_argument("--skip-s3", action="store_true")
    parser.add_argument("--child", nargs=6, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        op, backend, db_url, workdir, endpoint, bucket = args.child
        print(json.dumps(child(op, backend, db_url, Path(workdir), endpoint or None, bucket or None)))
        return 0

    from cim.db.scratch import create_database, drop_database

    args.dir.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="cim_archive_bench_", dir=args.dir)).resolve()
    server = _server_url()
    db_name = f"cim_bench_{secrets.token_hex(4)}"
    db_url = create_database(server, db_name)
    moto = None
    try:
        source = make_model(workdir / "model.ifc", args.size_mib)
        size = source.stat().st_size
        mb = size / 1e6
        cp_s = _timed(["cp", str(source), str(workdir / "cp.ifc")])
        cp_sync_start = time.perf_counter()
        subprocess.run(["cp", str(source), str(workdir / "cp3.ifc")], check=True)
        _fsync(workdir / "cp3.ifc")
        cp_sync_s = time.perf_counter() - cp_sync_start
        for name in ("cp.ifc", "cp3.ifc"):
            (workdir / name).unlink()
        print(
            f"file: {size / MIB:.0f} MiB in {workdir} (load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)"
        )
        print(
            f"cp:          {cp_s:6.2f} s = {mb / cp_s:7.1f} MB/s;  "
            f"cp + fsync: {cp_sync_s:6.2f} s = {mb / cp_sync_s:7.1f} MB/s"
        )
        print("hashing (this run, one core each): " + hash_rates())
        endpoint = bucket = ""
        backends = ["local"]
        if not args.skip_s3:
            import boto3

            port = _free_port()
            moto = subprocess.Popen(
                [str(Path(sys.executable).with_name("moto_server")), "-H", "127.0.0.1", "-p", str(port)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            endpoint = f"http://127.0.0.1:{port}"
            bucket = "bench"
            for _ in range(100):
                try:
                    boto3.client(
                        "s3",
                        endpoint_url=endpoint,
                        aws_access_key_id=S3_KEY_ID,
                        aws_secret_access_key=S3_SECRET,
                        region_name="us-east-1",
                    ).create_bucket(Bucket=bucket)
                    break
                except Exception:
                    time.sleep(0.1)
            backends.append("s3")
        results: dict[tuple[str, str], dict[str, Any]] = {}
        for backend in backends:
            for op in ("put", "get", "verify"):
                out = subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        "benchmarks.archive",
                        "--child",
                        op,
                        backend,
                        db_url,
                        str(workdir),
                        endpoint,
                        bucket,
                    ],
                    check=True,
                    capture_output=True,
                    text=True,
                )
                r = json.loads(out.stdout.strip().splitlines()[-1])
                results[(backend, op)] = r
                rate = r["bytes"] / 1e6 / r["seconds"]
                vs = (
                    f" = {rate / (mb / cp_s):.2f}× cp, {rate / (mb / cp_sync_s):.2f}× cp+fsync"
                    if backend == "local" and op != "verify"
                    else ""
                )
                print(
                    f"{backend:5} {op:6}: {r['seconds']:6.2f} s = {rate:7.1f} MB/s{vs}; "
                    f"peak RSS {r['peak_rss_mib']:6.1f} MiB"
                )
    finally:
        if moto is not None:
            moto.terminate()
            moto.wait()
        drop_database(server, db_name)
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
