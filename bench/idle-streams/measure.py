# Memory per idle event stream (issue 16): starts `mcx serve` on the built-in example
# system with a fresh data directory, logs Alice on, opens 50 streams to warm up, then N
# more `GET /v1/events` connections that stay idle, and prints the server's resident
# memory before and after the N, divided by N.
#
#   ulimit -n 16384; python3 bench/idle-streams/measure.py target/release/mcx 2000
import json, os, socket, subprocess, sys, time, urllib.request, tempfile
mcx, n = sys.argv[1], int(sys.argv[2])
port = 0
s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
data = tempfile.mkdtemp()
p = subprocess.Popen([mcx, "serve", "--listen", f"127.0.0.1:{port}", "--data-dir", data],
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
try:
    base = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            urllib.request.urlopen(base + "/v1/openapi.json", timeout=1); break
        except Exception: time.sleep(0.1)
    def post(body):
        r = urllib.request.Request(base + "/v1/session", data=json.dumps(body).encode(),
                                   headers={"content-type": "application/json"}, method="POST")
        return json.load(urllib.request.urlopen(r))
    tok = post({"mc-service-id": "sip:alice@police.example", "password": "alice", "client-id": "idle"})["token"]
    def rss():
        for line in open(f"/proc/{p.pid}/status"):
            if line.startswith("VmRSS:"): return int(line.split()[1])
    def open_stream():
        c = socket.create_connection(("127.0.0.1", port))
        c.sendall(f"GET /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {tok}\r\nAccept: text/event-stream\r\n\r\n".encode())
        return c
    warm = [open_stream() for _ in range(50)]
    time.sleep(1)
    before = rss()
    conns = [open_stream() for _ in range(n)]
    time.sleep(3)
    for c in conns[:5]:
        c.settimeout(2); 
        try: assert c.recv(100).startswith(b"HTTP/1.1 200"), "stream not open"
        except socket.timeout: pass
    after = rss()
    print(f"{n} idle streams: RSS {before} -> {after} KB, {(after - before) / n:.1f} KB each")
finally:
    p.terminate(); p.wait()
