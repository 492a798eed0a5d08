-- wrk script: POST a signed GitHub push with a fresh X-GitHub-Delivery per
-- request. PAYLOAD is the payload file, SIG256 its X-Hub-Signature-256.
local f = assert(io.open(os.getenv("PAYLOAD"), "rb"))
local body = f:read("*a")
f:close()
local sig = os.getenv("SIG256")
-- A distinct prefix per run: ids of an earlier run would be duplicates.
local run = os.getenv("RUN_ID") or "load"
-- IDS=uuid: random ids shaped like GitHub's (GUIDs), which land all over
-- an index of ids, where the default ids of a run are nearly in order.
local uuid = os.getenv("IDS") == "uuid"
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

local n = 0
function request()
  n = n + 1
  local id = run .. "-" .. tid .. "-" .. n
  if uuid then
    id = hex4() .. hex4() .. "-" .. hex4() .. "-" .. hex4() .. "-" .. hex4() .. "-" .. hex4() .. hex4() .. hex4()
  end
  return wrk.format("POST", "/webhook", {
    ["Content-Type"] = "application/json",
    ["X-GitHub-Event"] = "push",
    ["X-GitHub-Delivery"] = id,
    ["X-Hub-Signature-256"] = sig,
  }, body)
end
