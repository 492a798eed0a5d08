-- wrk script: POST a signed GitHub push with a fresh X-GitHub-Delivery per
-- request. PAYLOAD is the payload file, SIG256 its X-Hub-Signature-256.
local f = assert(io.open(os.getenv("PAYLOAD"), "rb"))
local body = f:read("*a")
f:close()
local sig = os.getenv("SIG256")
-- A distinct prefix per run: ids of an earlier run would be duplicates.
local run = os.getenv("RUN_ID") or "load"
-- IDS=uuid: random GUIDs, which land all over an index of ids, where the
-- default ids of a run are nearly in order. IDS=uuid1: time-based GUIDs
-- (version 1), as in GitHub's own examples of X-GitHub-Delivery
-- ("72d3162e-cc78-11e3-81ab-4c9367dc0958"): their first field is the low
-- 32 bits of a clock of 100 ns ticks, so ids made one after another sort
-- one after another, except when that field wraps (every 429 s).
local ids = os.getenv("IDS")
local uuid, uuid1 = ids == "uuid", ids == "uuid1"
local threads = 0

function setup(thread)
  threads = threads + 1
  thread:set("tid", tostring(threads))
end

function init()
  math.randomseed(os.time() * 1000 + tonumber(tid))
end

local function hex4()
  return string.format("%04x", math.random(0, 65535))
end

-- A version 1 GUID for the n-th request of this thread: the clock is the
-- run's second plus a tick per request (two threads interleaved), the
-- node and clock sequence this thread's own, as each GitHub host's are.
local node, clockseq
local function guid1(n)
  node = node or (hex4() .. hex4() .. hex4())
  clockseq = clockseq or string.format("%04x", 0x8000 + math.random(0, 0x3fff))
  local t = os.time()
  local ticks = (t % 429) * 10000000 + 2 * n + tonumber(tid)
  local high = math.floor(t * 10000000 / 4294967296)
  return string.format("%08x-%04x-1%03x-%s-%s", ticks % 4294967296, high % 65536, math.floor(high / 65536) % 4096, clockseq, node)
end

local n = 0
function request()
  n = n + 1
  local id = run .. "-" .. tid .. "-" .. n
  if uuid then
    id = hex4() .. hex4() .. "-" .. hex4() .. "-" .. hex4() .. "-" .. hex4() .. "-" .. hex4() .. hex4() .. hex4()
  elseif uuid1 then
    id = guid1(n)
  end
  return wrk.format("POST", "/webhook", {
    ["Content-Type"] = "application/json",
    ["X-GitHub-Event"] = "push",
    ["X-GitHub-Delivery"] = id,
    ["X-Hub-Signature-256"] = sig,
  }, body)
end
