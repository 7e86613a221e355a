-- Shared by every scenario: the API's headers, the id sample, and a done() that prints one JSON
-- line ("BENCH_JSON {...}") for bench/run.py: requests, errors, latency percentiles in µs.
-- Environment: BENCH_KEY (x-api-key), BENCH_IDS (file of profile ids, one a line).

wrk.headers["x-api-key"] = os.getenv("BENCH_KEY")
wrk.headers["anthropic-version"] = "2023-06-01"
wrk.headers["content-type"] = "application/json"

threads = {}
local thread_count = 0

function setup(thread)
  thread_count = thread_count + 1
  thread:set("thread_id", thread_count)
  table.insert(threads, thread)
end

function load_ids()
  local path = os.getenv("BENCH_IDS")
  local ids = {}
  local f = assert(io.open(path, "r"), "BENCH_IDS: cannot open " .. tostring(path))
  for line in f:lines() do
    if #line > 0 then ids[#ids + 1] = line end
  end
  f:close()
  assert(#ids > 0, "BENCH_IDS: no ids in " .. path)
  return ids
end

function seed()
  math.randomseed(os.time() * 1000 + (thread_id or 0) * 7919)
  for _ = 1, 10 do math.random() end
end

-- Counters a scenario keeps per thread (globals, so done() can read them with thread:get).
pages, walks, acked_n = 0, 0, 0

local function json_string(s)
  return '"' .. tostring(s):gsub('[%c"\\]', function(c)
    return string.format("\\u%04x", string.byte(c))
  end) .. '"'
end

function done(summary, latency, requests)
  local e = summary.errors
  local total_pages, total_walks = 0, 0
  local acked_file = os.getenv("BENCH_ACKED")
  local out = acked_file and assert(io.open(acked_file, "w")) or nil
  local acked_total = 0
  for _, t in ipairs(threads) do
    total_pages = total_pages + (t:get("pages") or 0)
    total_walks = total_walks + (t:get("walks") or 0)
    if out then
      local acked = t:get("acked") or {}
      for _, id in ipairs(acked) do
        out:write(id, "\n")
        acked_total = acked_total + 1
      end
    end
  end
  if out then out:close() end
  local p = {}
  for _, q in ipairs({50, 75, 90, 99, 99.9}) do
    p[#p + 1] = string.format('"%s":%d', tostring(q), latency:percentile(q))
  end
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"min":%d,"mean":%.1f,"max":%d,"stdev":%.1f,"percentiles":{%s}},' ..
    '"pages":%d,"walks":%d,"acked":%d,"script":%s}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.min, latency.mean, latency.max, latency.stdev, table.concat(p, ","),
    total_pages, total_walks, acked_total, json_string(os.getenv("BENCH_SCENARIO") or "?")))
end
