"""wrk passes for bench/vs-etcd: Lua scripts that make the request of each
workload and print the result (with p99.9 from wrk's own latency histogram)
as one JSON line from done()."""
import json
import os
import subprocess

# done() runs once in the main Lua state with the merged statistics of all
# threads; latencies are in microseconds.
DONE = r'''
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('VSETCD {"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,' ..
    '"status":%d,"timeout":%d,"p50_us":%d,"p99_us":%d,"p999_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), latency:percentile(99.9), latency.max))
end
'''

# A unique key per request: the thread's number (set by setup() in the main
# state) and a per-thread counter. Keys are made of base64 letters and digits
# only, in lengths that are multiples of 4, so the same string is both a
# valid Tenure shard id and a canonical base64 key for etcd's gateway
# (distinct strings decode to distinct keys).
UNIQUE = r'''
local threads = 0
function setup(thread)
  thread:set("tid", threads)
  threads = threads + 1
end
local counter = 0
local function unique_key()
  counter = counter + 1
  return string.format("%s%02d%010d", PREFIX, tid, counter)
end
'''


def write_script(path, system, prefix):
    """A write per request: etcd put of a new key, or Tenure create of a new shard id."""
    assert len(prefix) % 4 == 0 and prefix.isalnum()
    if system == "etcd":
        body = '\'{"key":"\' .. unique_key() .. \'","value":"dg=="}\''
    else:
        body = '\'{"ids":["\' .. unique_key() .. \'"]}\''
    lua = (f'PREFIX = "{prefix}"\nwrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
           + UNIQUE + f"request = function()\n  return wrk.format(nil, nil, nil, {body})\nend\n" + DONE)
    with open(path, "w") as f:
        f.write(lua)


def static_script(path, method, body):
    """The same request every time (reads of one existing key)."""
    lua = f'wrk.method = "{method}"\n'
    if body is not None:
        lua += f"wrk.headers[\"Content-Type\"] = \"application/json\"\nwrk.body = '{json.dumps(body)}'\n"
    with open(path, "w") as f:
        f.write(lua + DONE)


def run(url, script, connections, seconds):
    """Runs one wrk pass; returns the parsed done() line plus ok requests and rate."""
    threads = 1 if connections < 8 else 2
    cmd = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{max(1, round(seconds))}s", "--timeout", "5s",
           "-s", script, url]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    for line in out.stdout.splitlines():
        if line.startswith("VSETCD "):
            r = json.loads(line[len("VSETCD "):])
            r["ok"] = r["requests"] - r["status"]
            r["rate"] = r["ok"] / (r["duration_us"] / 1e6)
            r["errors"] = r["connect"] + r["read"] + r["write"] + r["status"] + r["timeout"]
            return r
    raise RuntimeError(f"wrk gave no result: {' '.join(cmd)}\n{out.stdout}\n{out.stderr}")


def script_path(work, name):
    d = os.path.join(work, "lua")
    os.makedirs(d, exist_ok=True)
    return os.path.join(d, name + ".lua")
