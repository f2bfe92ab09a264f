-- wrk script: POST /v1/embeddings with mixed-length inputs, every body new (no cache hits).
-- Lengths cycle through 16, 64, 256, 1024 and 4000 characters; every 5th request carries a list
-- of 4 inputs. Counts responses by status so the report can tell deliberate 429s from errors.
local words = {"the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "paris", "capital",
               "france", "embedding", "vector", "model", "server", "request", "latency", "memory"}
local lengths = {16, 64, 256, 1024, 4000}
local threads = {}
local filler = {}
local counter = 0
local id = 0

local function text(n, salt)
  local parts, len, i = {salt}, #salt, 0
  while len < n do
    i = i + 1
    local w = words[(i * 7 + n) % #words + 1]
    parts[#parts + 1] = w
    len = len + #w + 1
  end
  return string.sub(table.concat(parts, " "), 1, n)
end

function setup(thread)
  id = id + 1
  thread:set("tid", id)
  table.insert(threads, thread)
end

function init(args)
  c200, c429, c5xx, cother = 0, 0, 0, 0
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  for _, n in ipairs(lengths) do filler[n] = text(n, "") end -- built once: wrk shares the cores
  if os.getenv("DODECA_BENCH_KEY") then
    wrk.headers["Authorization"] = "Bearer " .. os.getenv("DODECA_BENCH_KEY")
  end
end

function request()
  counter = counter + 1
  local n = lengths[counter % #lengths + 1]
  local salt = "t" .. tid .. "r" .. counter
  local body
  if counter % 5 == 0 then
    local items = {}
    for k = 1, 4 do items[k] = '"' .. salt .. "i" .. k .. string.sub(filler[n], #salt + 3) .. '"' end
    body = '{"model":"dodeca-fused","input":[' .. table.concat(items, ",") .. ']}'
  else
    body = '{"model":"dodeca-fused","input":"' .. salt .. string.sub(filler[n], #salt + 1) .. '"}'
  end
  return wrk.format(nil, "/v1/embeddings", nil, body)
end

function response(status, headers, body)
  if status == 200 then c200 = c200 + 1
  elseif status == 429 then c429 = c429 + 1
  elseif status >= 500 then c5xx = c5xx + 1
  else cother = cother + 1 end
end

function done(summary, latency, requests)
  local t = {c200 = 0, c429 = 0, c5xx = 0, cother = 0}
  for _, th in ipairs(threads) do
    for k, _ in pairs(t) do t[k] = t[k] + (th:get(k) or 0) end
  end
  io.write(string.format("STATUS 200=%d 429=%d 5xx=%d other=%d socket_errors=%d\n", t.c200, t.c429,
                         t.c5xx, t.cother, summary.errors.connect + summary.errors.read +
                         summary.errors.write + summary.errors.timeout))
  io.write(string.format("LATENCY p50=%.2fms p90=%.2fms p99=%.2fms max=%.2fms\n",
                         latency:percentile(50) / 1000, latency:percentile(90) / 1000,
                         latency:percentile(99) / 1000, latency.max / 1000))
  io.write(string.format("RATE requests/s=%.1f\n", summary.requests / (summary.duration / 1e6)))
end
