"""Archive benchmark: put and get MB/s of a 1 GiB model on local disk and on S3 (moto), vs ``cp``; verify speed.

Run: ``.venv/bin/python -m benchmarks.archive [--size-mib 1024] [--json]``. Every archive operation runs in
its own child process so that its peak RSS (VmHWM) is its own. ``cp`` copies the same file on the same
disk in the same run (best of two, after ``sync``); ``cp + fsync`` adds the durability a put gives (it
fsyncs its file before it commits): a durable archive must fsync, plain ``cp`` only reaches the page
cache. Both are printed. A put computes SM3 of every byte, and SM3 cannot be split across cores, so
the one-core SM3 rate measured in the same run is printed too: no put can be faster than it.
The S3 figures are against moto's standalone server on loopback (a Python server: they measure the
client's streaming, concurrency and memory, not a production object store's throughput).

Targets: local put and get ≥ 0.5 × cp; peak RSS < 300 MiB for every operation; verify ≥ 0.75 × the
one-core SM3 rate (verify re-hashes every byte with SM3). The figures are printed against them whatever
they are; ``--json`` prints them as one JSON object instead.
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


def hash_rates() -> dict[str, float]:
    """MB/s of each digest a put computes, measured now on 64 MiB on one core (a put is bound by the slowest)."""
    import hashlib

    data = os.urandom(64 * MIB)
    rates = {}
    for name in ("sha512", "sha256", "sm3"):
        h = hashlib.new(name)
        started = time.perf_counter()
        h.update(data)
        rates[name] = 64 * MIB / 1e6 / (time.perf_counter() - started)
    return rates


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _timed(cmd: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(cmd, check=True)
    return time.perf_counter() - started


RSS_TARGET_MIB = 300.0
CP_RATIO_TARGET = 0.5
VERIFY_SM3_RATIO_TARGET = 0.75


def _cp_rates(source: Path, workdir: Path, mb: float) -> dict[str, float]:
    """MB/s of ``cp`` and of ``cp`` then fsync of the copy, best of two each, each after a ``sync``."""
    from cim.storage.local import fsync_path

    target = workdir / "cp.ifc"
    plain, durable = [], []
    for _ in range(2):
        os.sync()
        plain.append(_timed(["cp", str(source), str(target)]))
        target.unlink()
        os.sync()
        started = time.perf_counter()
        subprocess.run(["cp", str(source), str(target)], check=True)
        fsync_path(target)
        durable.append(time.perf_counter() - started)
        target.unlink()
    return {"cp_mb_s": mb / min(plain), "cp_fsync_mb_s": mb / min(durable)}


def _start_moto() -> tuple[subprocess.Popen[bytes], str, str]:
    import boto3

    port = _free_port()
    moto = subprocess.Popen(
        [str(Path(sys.executable).with_name("moto_server")), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint, bucket = f"http://127.0.0.1:{port}", "bench"
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=S3_KEY_ID,
        aws_secret_access_key=S3_SECRET,
        region_name="us-east-1",
    )
    for _ in range(200):
        try:
            client.create_bucket(Bucket=bucket)
            break
        except Exception:
            time.sleep(0.1)
    return moto, endpoint, bucket


def _run_child(op: str, backend: str, db_url: str, workdir: Path, endpoint: str, bucket: str) -> dict[str, Any]:
    os.sync()  # no dirty pages of an earlier step are flushed during this one
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.archive", "--child", op, backend, db_url, str(workdir), endpoint, bucket],
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        lines = out.stderr.strip().splitlines()
        return {"op": op, "backend": backend, "error": lines[-1] if lines else f"exit {out.returncode}"}
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def _judge(r: dict[str, Any], cp: dict[str, float], sm3_mb_s: float) -> dict[str, Any]:
    """Add the rate, the ratios and the targets (with pass/fail) to one child's figures."""
    if "error" in r:
        return {**r, "ok": False, "targets": {}}
    rate = r["bytes"] / 1e6 / r["seconds"]
    r["mb_s"] = round(rate, 1)
    targets: dict[str, dict[str, Any]] = {
        "peak_rss_mib": {"target": f"< {RSS_TARGET_MIB:.0f}", "ok": r["peak_rss_mib"] < RSS_TARGET_MIB}
    }
    if r["backend"] == "local" and r["op"] in ("put", "get"):
        r["x_cp"] = round(rate / cp["cp_mb_s"], 3)
        r["x_cp_fsync"] = round(rate / cp["cp_fsync_mb_s"], 3)
        targets["x_cp"] = {"target": f">= {CP_RATIO_TARGET}", "ok": r["x_cp"] >= CP_RATIO_TARGET}
    if r["op"] in ("put", "verify"):
        r["x_sm3"] = round(rate / sm3_mb_s, 3)
    if r["op"] == "verify":
        targets["x_sm3"] = {"target": f">= {VERIFY_SM3_RATIO_TARGET}", "ok": r["x_sm3"] >= VERIFY_SM3_RATIO_TARGET}
    r["targets"] = targets
    r["ok"] = all(t["ok"] for t in targets.values())
    return r


def _line(r: dict[str, Any]) -> str:
    if "error" in r:
        return f"{r['backend']:5} {r['op']:6}: FAILED: {r['error']}"
    text = f"{r['backend']:5} {r['op']:6}: {r['seconds']:6.2f} s = {r['mb_s']:7.1f} MB/s"
    if "x_cp" in r:
        mark = "ok" if r["targets"]["x_cp"]["ok"] else "MISSED"
        text += f" = {r['x_cp']:.2f}× cp [target ≥ {CP_RATIO_TARGET}: {mark}], {r['x_cp_fsync']:.2f}× cp+fsync"
    if "x_sm3" in r:
        text += f", {r['x_sm3']:.2f}× one-core SM3"
        if r["op"] == "verify":
            text += f" [target ≥ {VERIFY_SM3_RATIO_TARGET}: {'ok' if r['targets']['x_sm3']['ok'] else 'MISSED'}]"
    rss_ok = "ok" if r["targets"]["peak_rss_mib"]["ok"] else "MISSED"
    return text + f"; peak RSS {r['peak_rss_mib']:6.1f} MiB [target < {RSS_TARGET_MIB:.0f}: {rss_ok}]"


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its figures against the targets."""
    parser = argparse.ArgumentParser(description="Archive benchmark (put/get MB/s vs cp, peak RSS, verify MB/s)")
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--dir", type=Path, default=Path(".cim"), help="folder on the disk to measure")
    parser.add_argument("--skip-s3", action="store_true")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    parser.add_argument("--child", nargs=6, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        op, backend, db_url, workdir, endpoint, bucket = args.child
        print(json.dumps(child(op, backend, db_url, Path(workdir), endpoint or None, bucket or None)))
        return 0

    from cim.db.scratch import create_database, drop_database

    def say(text: str) -> None:
        if not args.json:
            print(text, flush=True)

    args.dir.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="cim_archive_bench_", dir=args.dir)).resolve()
    server = _server_url()
    db_name = f"cim_bench_{secrets.token_hex(4)}"
    db_url = create_database(server, db_name)
    moto = None
    figures: dict[str, Any] = {"load_average": list(os.getloadavg()), "cores": os.cpu_count()}
    try:
        source = make_model(workdir / "model.ifc", args.size_mib)
        size = source.stat().st_size
        cp = _cp_rates(source, workdir, size / 1e6)
        hashes = hash_rates()
        figures.update({"file_bytes": size, "dir": str(workdir), **{k: round(v, 1) for k, v in cp.items()}})
        figures["hash_mb_s"] = {k: round(v, 1) for k, v in hashes.items()}
        say(
            f"file: {size / MIB:.0f} MiB in {workdir} (load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)"
        )
        say(
            f"cp:          {cp['cp_mb_s']:7.1f} MB/s (page cache only);  "
            f"cp + fsync: {cp['cp_fsync_mb_s']:7.1f} MB/s (durable, as a put is)"
        )
        say(
            "hashing (this run, one core each): "
            + ", ".join(f"{k} {v:.0f} MB/s" for k, v in hashes.items())
            + f"; a put cannot beat one-core SM3 = {hashes['sm3'] / cp['cp_mb_s']:.2f}× cp"
        )
        endpoint = bucket = ""
        backends = ["local"]
        if not args.skip_s3:
            moto, endpoint, bucket = _start_moto()
            backends.append("s3")
        results = []
        for backend in backends:
            for op in ("put", "get", "verify"):
                r = _judge(_run_child(op, backend, db_url, workdir, endpoint, bucket), cp, hashes["sm3"])
                results.append(r)
                say(_line(r))
        figures["results"] = results
        figures["ok"] = all(r["ok"] for r in results)
        figures["load_average_end"] = list(os.getloadavg())
        verdict = "all met" if figures["ok"] else "some MISSED (see above)"
        say(f"targets: {verdict}; load average now {os.getloadavg()[0]:.1f}")
    finally:
        if moto is not None:
            moto.terminate()
            moto.wait()
        drop_database(server, db_name)
        shutil.rmtree(workdir, ignore_errors=True)
    if args.json:
        print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
