-- wrk script of tools/kestrel-bench.py: `-- post N` sends N-byte bodies to the path; done() prints one JSON line.
function init(args)
  if args[1] == "post" then
    wrk.method = "POST"
    wrk.body = string.rep("b", tonumber(args[2]))
    wrk.headers["Content-Type"] = "application/octet-stream"
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"bytes":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,"p50_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
