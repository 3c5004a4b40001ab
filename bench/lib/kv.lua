-- wrk script of the key/value benchmarks (bench/kv.sh).
--   wrk ... -s kv.lua URL -- MODE [NKEYS] [VALUE_BYTES]
-- MODE: rp_put (PUT /v1/kv/K, raw body), rp_get (GET /v1/kv/K, linearizable),
--       etcd_put (POST /v3/kv/put, JSON), etcd_range (POST /v3/kv/range, JSON,
--       linearizable).
-- With WRK_TOKEN set (bench/tls.sh), every request carries
-- "Authorization: Bearer $WRK_TOKEN".
-- Each thread cycles over NKEYS keys (default 64) starting at its own offset,
-- so concurrent connections mostly write different keys. Requests are built
-- once in init(). done() appends one JSON line to $WRK_OUT: counts, errors and
-- the latency quantiles 0.1%..99.9% (step 0.1%), 99.95%, 99.99% and max, in
-- microseconds, so that several wrk processes can be merged by bench/lib/wrkmerge.py.

local b64chars = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'
local function b64(data)
  return ((data:gsub('.', function(x)
    local r, b = '', x:byte()
    for i = 8, 1, -1 do r = r .. (b % 2 ^ i - b % 2 ^ (i - 1) > 0 and '1' or '0') end
    return r
  end) .. '0000'):gsub('%d%d%d?%d?%d?%d?', function(x)
    if #x < 6 then return '' end
    local c = 0
    for i = 1, 6 do c = c + (x:sub(i, i) == '1' and 2 ^ (6 - i) or 0) end
    return b64chars:sub(c + 1, c + 1)
  end) .. ({ '', '==', '=' })[#data % 3 + 1])
end

local thread_no = 0
function setup(thread)
  thread:set("tid", thread_no)
  thread_no = thread_no + 1
end

local reqs, n, i = {}, 0, 0
function init(args)
  local mode = args[1] or "rp_put"
  local nkeys = tonumber(args[2] or "64")
  local vbytes = tonumber(args[3] or "200")
  local value = string.rep("v", vbytes)
  local token = os.getenv("WRK_TOKEN")
  local function hdrs(h)
    if token and token ~= "" then h["Authorization"] = "Bearer " .. token end
    return h
  end
  local tid_ = tid or 0
  math.randomseed(os.time() + tid_ * 7919)
  for k = 1, nkeys do
    local key = string.format("bench-%03d", (k - 1 + tid_ * 17) % nkeys)
    local r
    if mode == "rp_put" then
      r = wrk.format("PUT", "/v1/kv/" .. key, hdrs({ ["Content-Type"] = "application/octet-stream" }), value)
    elseif mode == "rp_get" then
      r = wrk.format("GET", "/v1/kv/" .. key, hdrs({}), nil)
    elseif mode == "etcd_put" then
      r = wrk.format("POST", "/v3/kv/put", { ["Content-Type"] = "application/json" },
        '{"key":"' .. b64(key) .. '","value":"' .. b64(value) .. '"}')
    elseif mode == "etcd_range" then
      r = wrk.format("POST", "/v3/kv/range", { ["Content-Type"] = "application/json" },
        '{"key":"' .. b64(key) .. '"}')
    else
      error("unknown mode " .. mode)
    end
    reqs[k] = r
  end
  n = nkeys
  i = math.random(0, nkeys - 1)
end

function request()
  i = i % n + 1
  return reqs[i]
end

function done(summary, latency, requests)
  local out = os.getenv("WRK_OUT")
  if not out then return end
  local f = io.open(out, "a")
  local q = {}
  for p = 1, 999 do q[#q + 1] = string.format("%d", latency:percentile(p / 10)) end
  q[#q + 1] = string.format("%d", latency:percentile(99.95))
  q[#q + 1] = string.format("%d", latency:percentile(99.99))
  q[#q + 1] = string.format("%d", latency.max)
  local e = summary.errors
  f:write(string.format(
    '{"duration_us":%d,"requests":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,"mean_us":%.1f,"q":[%s]}\n',
    summary.duration, summary.requests, e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, table.concat(q, ",")))
  f:close()
end
