-- wrk script for benchmarks/loadgen.py: each wrk thread sends, in order and once
-- each, the requests written to its own file (one per line: method, path, body,
-- then header names and values, separated by tabs). The requests are made, and
-- signed, before the timed run, so wrk's threads only send and read.

local threads = {}

function setup(thread)
  thread:set("number", #threads)
  table.insert(threads, thread)
end

local requests, next_one = {}, 0
wrapped = 0 -- a global: done() reads it from each thread

local function fields(line)
  local out = {}
  for field in (line .. "\t"):gmatch("([^\t]*)\t") do
    table.insert(out, field)
  end
  return out
end

function init(args)
  for line in io.lines(args[1] .. "." .. number) do
    local f = fields(line)
    local headers = {}
    for i = 4, #f - 1, 2 do
      headers[f[i]] = f[i + 1]
    end
    local body = f[3] ~= "" and f[3] or nil
    table.insert(requests, wrk.format(f[1], f[2], headers, body))
  end
end

function request()
  next_one = next_one + 1
  if next_one > #requests then -- ran out: sent again (the caller reports it)
    next_one, wrapped = 1, 1
  end
  return requests[next_one]
end

function done(summary, latency, _requests)
  local ran_out = 0
  for _, thread in ipairs(threads) do
    ran_out = ran_out + thread:get("wrapped")
  end
  io.write(string.format(
    "loadgen requests=%d seconds=%.6f non2xx=%d errors=%d p50_us=%d p99_us=%d ran_out=%d\n",
    summary.requests, summary.duration / 1e6, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50), latency:percentile(99), ran_out))
end
