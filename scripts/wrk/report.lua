-- report.lua: wrk done() hook that writes one JSON line per run: the
-- summary, latency percentiles (microseconds) and error counts.
--
-- The line goes to the file named by $WRK_JSON (appended), or to stdout
-- prefixed with "@@wrk-json " when the variable is unset.  Defining only
-- done() (no request/response hooks) keeps wrk on its fast path.
--
-- Error fields are wrk's own counters: connect, read, write, timeout (no
-- response within --timeout) and status (responses with status >= 400;
-- wrk does not count 3xx).

local function num(x)
   -- JSON has no NaN/inf; wrk yields NaN for the stdev of < 2 samples.
   if x ~= x or x == math.huge or x == -math.huge then
      return "0"
   end
   return string.format("%.3f", x)
end

function done(summary, latency, requests)
   local e = summary.errors
   local secs = summary.duration / 1e6
   local rps = 0
   if secs > 0 then
      rps = summary.requests / secs
   end
   local fields = {
      string.format('"duration_us":%d', summary.duration),
      string.format('"requests":%d', summary.requests),
      string.format('"bytes":%d', summary.bytes),
      '"rps":' .. num(rps),
      '"mean_us":' .. num(latency.mean),
      '"stdev_us":' .. num(latency.stdev),
      string.format('"min_us":%d', latency.min),
      string.format('"max_us":%d', latency.max),
   }
   local pcts = { {"p50", 50}, {"p75", 75}, {"p90", 90}, {"p99", 99},
                  {"p999", 99.9} }
   for _, p in ipairs(pcts) do
      fields[#fields + 1] = string.format('"%s_us":%d', p[1],
                                          latency:percentile(p[2]))
   end
   fields[#fields + 1] = string.format(
      '"errors":{"connect":%d,"read":%d,"write":%d,"timeout":%d,' ..
      '"status":%d}', e.connect, e.read, e.write, e.timeout, e.status)
   local line = "{" .. table.concat(fields, ",") .. "}"
   local path = os.getenv("WRK_JSON")
   if path and path ~= "" then
      local f = assert(io.open(path, "a"))
      f:write(line, "\n")
      f:close()
   else
      io.write("@@wrk-json ", line, "\n")
   end
end
