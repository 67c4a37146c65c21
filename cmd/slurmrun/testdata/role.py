"""A role program that follows test_perf_sanity.py's disaggregated protocol.

GEN_i/CTX_i serve HTTP on a loopback port and write hostnames-0/<ROLE>.txt;
DISAGG_SERVER waits for every worker, writes server_config.0.yaml and serves;
BENCHMARK waits for the server config and calls every server. Workers and the
server run until benchmark_status.0.txt appears (written by the launcher).

Usage: role.py OUTPUT_DIR [ignored...]
Environment: DISAGG_SERVING_TYPE, NUM_WORKERS, ROLE_CRASH=<role> (exit 3
early; ROLE_CRASH_RANK=<n>: that rank only), ROLE_POLL (seconds between status-file polls, default 0.1; upstream
polls every 10), ROLE_BENCH_SECONDS (how long the benchmark runs),
ROLE_WRITE_STATUS=1 (the benchmark writes the status file itself, as
test_perf_sanity.py does under the bash launcher).
"""
import http.server
import json
import os
import sys
import threading
import time
import urllib.request

role = os.environ["DISAGG_SERVING_TYPE"]
out = sys.argv[1]
rank = int(os.environ.get("SLURM_PROCID", "0"))
poll = float(os.environ.get("ROLE_POLL", "0.1"))
status = os.path.join(out, "benchmark_status.0.txt")
hostnames = os.path.join(out, "hostnames-0")
config = os.path.join(out, "server_config.0.yaml")


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.replace(path + ".tmp", path)


def serve():
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = (role + "\n").encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return "127.0.0.1:%d" % srv.server_address[1]


def wait_for(path, what):
    while not os.path.exists(path):
        time.sleep(poll)
    print(role, "saw", what, flush=True)


if os.environ.get("ROLE_CRASH") == role and os.environ.get("ROLE_CRASH_RANK", str(rank)) == str(rank):
    time.sleep(0.5)
    print(role, "crashing", flush=True)
    sys.exit(3)

if role.startswith(("GEN_", "CTX_")):
    if rank == 0:
        write(os.path.join(hostnames, role + ".txt"), serve())
    wait_for(status, "the benchmark status")
elif role == "DISAGG_SERVER":
    need = int(os.environ.get("NUM_WORKERS", "1"))
    while not os.path.isdir(hostnames) or len(os.listdir(hostnames)) < need:
        time.sleep(poll)
    urls = {n[:-4]: open(os.path.join(hostnames, n)).read() for n in os.listdir(hostnames) if n.endswith(".txt")}
    write(config, json.dumps({"hostname": "127.0.0.1", "server": serve(), "workers": urls}))
    wait_for(status, "the benchmark status")
elif role == "BENCHMARK":
    write(os.path.join(out, "benchmark_process_start"), repr(time.time()))
    wait_for(config, "the server config")
    cfg = json.load(open(config))
    write(os.path.join(out, "benchmark_started"), str(time.time()))
    for url in [cfg["server"]] + list(cfg["workers"].values()):
        print("benchmark:", urllib.request.urlopen("http://" + url, timeout=10).read().decode().strip(), flush=True)
    time.sleep(float(os.environ.get("ROLE_BENCH_SECONDS", "0.5")))
    write(os.path.join(out, "benchmark_end"), repr(time.time()))
    if os.environ.get("ROLE_WRITE_STATUS") == "1":
        write(status, "Done")
print(role, "done", flush=True)
