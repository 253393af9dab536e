-- POSTs one lead per request, each with its own valid phone number, from a client address
-- of its own (X-Forwarded-For, believed from loopback: QUANZI_TRUSTED_PROXIES' default), and
-- writes the phone of every 200 answer to a file. Run with as many threads as connections
-- (one connection per thread), so each answer belongs to the thread's last request.
-- wrk -t N -c N -s leads.lua URL -- DIR: DIR/phones-<i>.txt in, DIR/acked-<i>.txt out.
local threads_made = 0

function setup(thread)
  thread:set("id", threads_made)
  threads_made = threads_made + 1
end

function init(args)
  local dir = args[1]
  phones = {}
  for line in io.lines(dir .. "/phones-" .. id .. ".txt") do
    phones[#phones + 1] = line
  end
  sent = 0
  last = nil
  acked = io.open(dir .. "/acked-" .. id .. ".txt", "w")
  headers = { ["Content-Type"] = "application/x-www-form-urlencoded" }
end

function request()
  sent = sent + 1
  last = phones[(sent - 1) % #phones + 1]
  -- 198.18.0.0/15 is the benchmarking range (RFC 2544): an address per request.
  local n = id * 1000000 + sent
  headers["X-Forwarded-For"] = string.format("198.%d.%d.%d", 18 + math.floor(n / 65536) % 2,
    math.floor(n / 256) % 256, n % 256)
  local body = "name=%E5%8E%8B%E6%B5%8B&phone=" .. last .. "&consent=1"
  return wrk.format("POST", nil, headers, body)
end

function response(status, headers, body)
  if status == 200 then
    acked:write(last, "\n")
    acked:flush()
  end
end

-- done(): the same result line as every other phase.
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "report.lua")
