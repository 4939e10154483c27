-- wrk script: the lookup-heavy read mix of a job server's status pages and
-- workers polling their units. 80 % GET of a work unit (status and data in
-- one document), 20 % GET of a work spec's meta, names drawn uniformly from
-- the data set seeded by http_load.sh (SPECS specs of UNITS units each, in
-- namespace "bench"). Every request names namespace, spec (and unit), so
-- every request resolves two or three names.
local specs = tonumber(os.getenv("SPECS") or "4")
local units = tonumber(os.getenv("UNITS") or "2500")

local thread_seed = 0
function setup(thread)
  thread_seed = thread_seed + 1
  thread:set("seed", thread_seed)
end

function init(args)
  math.randomseed(os.time() * 1000 + (seed or 0))
end

function request()
  local s = math.random(specs) - 1
  if math.random(10) <= 2 then
    return wrk.format("GET", string.format("/namespace/bench/work_spec/s%d/meta?counts=false", s))
  end
  local u = math.random(units) - 1
  return wrk.format("GET", string.format("/namespace/bench/work_spec/s%d/work_unit/u%05d", s, u))
end

function done(summary, latency, requests)
  local seconds = summary.duration / 1e6
  local errors = summary.errors.status + summary.errors.connect + summary.errors.read
    + summary.errors.write + summary.errors.timeout
  io.write(string.format(
    "RESULT requests=%d errors=%d seconds=%.2f rps=%.1f p50_us=%d p99_us=%d\n",
    summary.requests, errors, seconds, summary.requests / seconds,
    latency:percentile(50), latency:percentile(99)))
end
