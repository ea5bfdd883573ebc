#!/usr/bin/env python
"""Load test of the annotation server: concurrent sessions of clicks against a server it starts on 127.0.0.1.

    python scripts/load_test.py                                  # 8 sessions x 20 clicks, 4 rounds, random hr18s
    python scripts/load_test.py --sessions 1 --rounds 1 --threads 1 --json one.json   # one user's latency
    python scripts/load_test.py --checkpoint weights/hr18s.pth --device cuda

Starts ``scripts/demo.py`` on a free loopback port (``--max-sessions``, default twice
``--sessions``), then runs ``--sessions`` clients at once. Each client, ``--rounds`` times, uploads a
synthetic ``--size`` image and makes ``--clicks`` clicks (the whole list each time, as the page
does), without deleting the session afterwards, as a closed browser tab: from the round where
the sessions opened exceed ``--max-sessions``, each new one evicts an old one. Meanwhile the
server's resident memory is sampled (``/proc``).

Prints p50 / p95 round trips of first clicks (backbone + head) and later clicks (head only),
the server's own share (the model: the predictor's ``predict``; the wait for the device's
thread; the mask's encoding; the time outside the request handler: HTTP, JSON, threads), errors,
peak resident memory and memory over time, as a Markdown table and as JSON (``--json``).
Bounded: at most ``--time-limit`` seconds; requests time out. Without ``--checkpoint``, a
random-weight ``--model`` checkpoint is written to a temporary file.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Dict, List, Optional

import cv2

from isegm.build import build_emc_click, list_models
from isegm.inference.benchmarking import parse_size, synthetic_clicks, synthetic_sample
from isegm.model.checkpoint import save_checkpoint

REPO = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sessions", type=int, default=8, help="concurrent clients")
    parser.add_argument("--clicks", type=int, default=20, help="clicks per session")
    parser.add_argument("--rounds", type=int, default=4, help="sessions per client, one after the other")
    parser.add_argument("--max-sessions", type=int, default=0, help="the server's session limit (0: 2 x --sessions)")
    parser.add_argument("--size", default="480x640", help="HxW of the uploaded synthetic image")
    parser.add_argument("--checkpoint", default="", help="checkpoint to serve (default: a random-weight --model)")
    parser.add_argument("--model", default="hr18s", choices=list_models())
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=0, help="the server's torch threads (0: torch's default)")
    parser.add_argument("--infer-size", type=int, default=384, help="the server's network short side")
    parser.add_argument("--time-limit", type=float, default=900, help="seconds before the clients stop")
    parser.add_argument("--request-timeout", type=float, default=120, help="seconds a request may take")
    parser.add_argument("--sample-every", type=float, default=0.25, help="seconds between memory samples")
    parser.add_argument("--json", default="", help="also write the results to this file")
    args = parser.parse_args(argv)
    for name in ("sessions", "clicks", "rounds"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    try:
        args.size = parse_size(args.size)
    except ValueError as exc:
        parser.error(str(exc))
    args.max_sessions = args.max_sessions or 2 * args.sessions
    return args


class Server:
    """``scripts/demo.py`` in a subprocess on a free loopback port; stopped on exit."""

    def __init__(self, args: argparse.Namespace, checkpoint: str, images: str):
        cmd = [sys.executable, str(REPO / "scripts" / "demo.py"), "--checkpoint", checkpoint, "--images", images,
               "--host", HOST, "--port", "0", "--device", args.device, "--max-sessions", str(args.max_sessions),
               "--threads", str(args.threads), "--infer-size", str(args.infer_size), "--log-level", "warning",
               "--output", os.path.join(images, "annotations")]
        self.process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.port = self._wait_for_address()
        self.output: List[str] = []
        threading.Thread(target=self._drain, daemon=True).start()

    def _wait_for_address(self, timeout: float = 180) -> int:
        deadline = time.monotonic() + timeout
        lines = []
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                break
            lines.append(line)
            match = re.search(rf"http://{re.escape(HOST)}:(\d+)/", line)
            if match:
                return int(match.group(1))
        self.stop()
        raise RuntimeError("the server did not start:\n" + "".join(lines[-20:]))

    def _drain(self) -> None:
        for line in self.process.stdout:
            self.output.append(line)

    def memory(self) -> Dict[str, int]:
        """``VmRSS`` (resident now) and ``VmHWM`` (peak resident) of the server, in bytes."""
        values = {}
        with open(f"/proc/{self.process.pid}/status") as f:
            for line in f:
                key, _, rest = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    values[key] = int(rest.split()[0]) * 1024
        return values

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class Client:
    """One user: a keep-alive connection, sessions one after another, every click timed."""

    def __init__(self, args: argparse.Namespace, port: int, image_png: bytes, seed: int, deadline: float):
        self.args, self.port, self.image_png, self.seed, self.deadline = args, port, image_png, seed, deadline
        self.records: List[dict] = []
        self.errors: List[str] = []

    def request(self, connection: http.client.HTTPConnection, method: str, path: str, body: bytes,
                content_type: str) -> dict:
        connection.request(method, path, body=body, headers={"Content-Type": content_type})
        response = connection.getresponse()
        data = response.read()
        if response.status >= 300:
            raise RuntimeError(f"{method} {path}: HTTP {response.status} {data[:200]!r}")
        return json.loads(data)

    def run(self) -> None:
        height, width = self.args.size
        connection = http.client.HTTPConnection(HOST, self.port, timeout=self.args.request_timeout)
        try:
            for round_ in range(self.args.rounds):
                clicks = synthetic_clicks(self.args.clicks, height, width, seed=self.seed * 1000 + round_)
                try:
                    opened = self.request(connection, "POST", "/api/sessions", self.image_png, "image/png")
                    for n in range(1, len(clicks) + 1):
                        if time.monotonic() > self.deadline:
                            self.errors.append("time limit reached")
                            return
                        body = json.dumps({"clicks": [{"x": round(x), "y": round(y), "positive": p}
                                                      for y, x, p in clicks[:n]]}).encode()
                        start = time.perf_counter()
                        answer = self.request(connection, "POST", f"/api/sessions/{opened['session']}/clicks",
                                              body, "application/json")
                        self.records.append({"round": round_, "click": n, "end": time.monotonic(),
                                             "round_trip": time.perf_counter() - start,
                                             "backbone": answer["backbone"], **answer["timings_ms"]})
                except (OSError, RuntimeError, http.client.HTTPException, ValueError) as exc:
                    self.errors.append(f"round {round_}: {type(exc).__name__}: {exc}")
                    connection.close()
                    connection = http.client.HTTPConnection(HOST, self.port, timeout=self.args.request_timeout)
        finally:
            connection.close()


def percentile(values: List[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def summarize(records: List[dict]) -> Dict[str, dict]:
    out = {}
    for name, chosen in (("first click", [r for r in records if r["click"] == 1]),
                         ("later clicks", [r for r in records if r["click"] > 1])):
        trips = [1e3 * r["round_trip"] for r in chosen]
        model = [r["model"] for r in chosen]
        added = [1e3 * r["round_trip"] - r["model"] for r in chosen]
        out[name] = {"requests": len(chosen), "p50_ms": percentile(trips, 50), "p95_ms": percentile(trips, 95),
                     "max_ms": max(trips, default=float("nan")), "model_p50_ms": percentile(model, 50),
                     "wait_p50_ms": percentile([r["wait"] for r in chosen], 50),
                     "encode_p50_ms": percentile([r["encode"] for r in chosen], 50),
                     "outside_server_p50_ms": percentile([1e3 * r["round_trip"] - r["server"] for r in chosen], 50),
                     "added_p50_ms": percentile(added, 50),
                     "backbone_ran": sum(bool(r["backbone"]) for r in chosen)}
    return out


def main(argv=None) -> dict:
    args = parse_args(argv)
    if threading.current_thread() is threading.main_thread():
        # `timeout` and `kill` send SIGTERM: leave through the `finally` that stops the server.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit("load test: terminated"))
    height, width = args.size
    with tempfile.TemporaryDirectory(prefix="emc_load_") as tmp:
        checkpoint = args.checkpoint
        if not checkpoint:
            checkpoint = os.path.join(tmp, f"{args.model}_random.pth")
            save_checkpoint(build_emc_click(args.model), checkpoint)
        image, _ = synthetic_sample(height, width)
        cv2.imwrite(os.path.join(tmp, "sample.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        image_png = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))[1].tobytes()
        server = Server(args, checkpoint, tmp)
        try:
            report = run_clients(args, server, image_png)
        finally:
            server.stop()
    report["load_average_end"] = os.getloadavg()
    print_report(report)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1) + "\n")
        print(f"\nwrote {args.json}")
    if report["errors"] or report["incomplete"]:
        sys.exit(f"load test: {len(report['errors'])} error(s), {report['incomplete']} click(s) not made")
    return report


def run_clients(args: argparse.Namespace, server: Server, image_png: bytes) -> dict:
    load_start = os.getloadavg()
    start = time.monotonic()
    deadline = start + args.time_limit
    clients = [Client(args, server.port, image_png, seed, deadline) for seed in range(args.sessions)]
    threads = [threading.Thread(target=c.run, daemon=True) for c in clients]
    for thread in threads:
        thread.start()
    samples: List[dict] = []
    info = http.client.HTTPConnection(HOST, server.port, timeout=args.request_timeout)

    def sample() -> None:
        info.request("GET", "/api/info")
        evicted = json.loads(info.getresponse().read())["evicted"]
        samples.append({"t": time.monotonic() - start, **server.memory(), "evicted": evicted,
                        "clicks": sum(len(c.records) for c in clients)})

    while any(t.is_alive() for t in threads):
        sample()
        for thread in threads:
            thread.join(timeout=args.sample_every / len(threads))
    sample()   # the state after the last click
    info.close()
    wall = time.monotonic() - start
    memory = server.memory()
    records = [r for c in clients for r in c.records]
    evicting = [s for s in samples if s["evicted"] > 0]
    rounds = []
    for round_ in range(args.rounds):
        ends = [r["end"] - start for r in records if r["round"] == round_]
        if ends:
            rss = [s["VmRSS"] for s in samples if s["t"] <= max(ends)] or [None]
            rounds.append({"round": round_, "end_s": max(ends), "rss_at_end": rss[-1]})
    return {"args": dict(vars(args)), "wall_s": wall, "clicks_made": len(records),
            "incomplete": args.sessions * args.rounds * args.clicks - len(records),
            "errors": [e for c in clients for e in c.errors], "latency": summarize(records),
            "peak_rss": memory["VmHWM"], "rss_end": memory["VmRSS"],
            "evicted": samples[-1]["evicted"] if samples else 0,
            "eviction_started_s": evicting[0]["t"] if evicting else None,
            "rss_after_eviction_started": ({"first": evicting[0]["VmRSS"], "min": min(s["VmRSS"] for s in evicting),
                                            "max": max(s["VmRSS"] for s in evicting)} if evicting else None),
            "rounds": rounds, "memory_samples": samples, "load_average_start": load_start}


def mb(value: Optional[float]) -> str:
    return "-" if value is None else f"{value / 2 ** 20:.0f}"


def print_report(report: dict) -> None:
    a = report["args"]
    print(f"\n### {a['sessions']} concurrent sessions x {a['clicks']} clicks x {a['rounds']} rounds, "
          f"{a['size'][0]}x{a['size'][1]} uploads, {Path(a['checkpoint']).name or a['model'] + ' (random weights)'} "
          f"on {a['device']}, server keeps {a['max_sessions']} sessions, load average "
          f"{report['load_average_start'][0]:.2f} -> {report['load_average_end'][0]:.2f}\n")
    print("| clicks | requests | p50 ms | p95 ms | max ms | server model p50 ms | wait p50 ms "
          "| round trip - model p50 ms | mask encoding p50 ms | outside the handler p50 ms |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, s in report["latency"].items():
        print(f"| {name} | {s['requests']} | {s['p50_ms']:.0f} | {s['p95_ms']:.0f} | {s['max_ms']:.0f} "
              f"| {s['model_p50_ms']:.1f} | {s['wait_p50_ms']:.1f} | {s['added_p50_ms']:.1f} "
              f"| {s['encode_p50_ms']:.1f} | {s['outside_server_p50_ms']:.1f} |")
    print(f"\nerrors: {len(report['errors'])}, clicks made: {report['clicks_made']} "
          f"({report['incomplete']} missing), wall time {report['wall_s']:.0f} s")
    for error in report["errors"][:5]:
        print(f"  {error}")
    after = report["rss_after_eviction_started"]
    print(f"server resident memory: peak {mb(report['peak_rss'])} MB, at the end {mb(report['rss_end'])} MB; "
          + (f"eviction started at {report['eviction_started_s']:.0f} s with {mb(after['first'])} MB, then "
             f"{mb(after['min'])} to {mb(after['max'])} MB ({report['evicted']} sessions evicted)" if after else
             "no eviction (no more sessions than --max-sessions)"))
    print("\n| round | ends at s | resident MB at its end |")
    print("|---:|---:|---:|")
    for r in report["rounds"]:
        print(f"| {r['round'] + 1} | {r['end_s']:.0f} | {mb(r['rss_at_end'])} |")
    summary = {k: v for k, v in report.items() if k != "memory_samples"}
    print("\n" + json.dumps(summary, default=str))


if __name__ == "__main__":
    main()
