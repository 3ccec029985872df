-- Argo CD health check for modelfleet.io/FleetCluster.
--
-- Argo CD sets the global `obj` to the live object; the script returns a table `hs`
-- with `status` and `message`. Only base Lua 5.1 is used (no string library).
--
-- status.health is the operator's verdict on the member cluster:
--   Healthy                      -> Healthy
--   Failed                       -> Degraded (its replicas are being failed over)
--   Suspect, Recovering, Unknown -> Progressing (the operator is still deciding)
-- Until the operator has observed the current generation the object is Progressing.

local healthToStatus = {
  Healthy = "Healthy",
  Failed = "Degraded",
  Suspect = "Progressing",
  Recovering = "Progressing",
  Unknown = "Progressing",
}

local function findCondition(conditions, conditionType)
  if conditions == nil then
    return nil
  end
  for _, condition in ipairs(conditions) do
    if condition.type == conditionType then
      return condition
    end
  end
  return nil
end

local function hasMessage(condition)
  return condition ~= nil and condition.message ~= nil and condition.message ~= ""
end

-- The most telling condition message: Reachable's when the API server is not reachable,
-- else Ready's, else nil.
local function detail(conditions)
  local reachable = findCondition(conditions, "Reachable")
  if hasMessage(reachable) and reachable.status ~= "True" then
    return reachable.message
  end
  local ready = findCondition(conditions, "Ready")
  if hasMessage(ready) then
    return ready.message
  end
  return nil
end

local hs = {}
local generation = obj.metadata.generation
local status = obj.status

if status == nil or status.observedGeneration == nil
    or (generation ~= nil and status.observedGeneration ~= generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. tostring(generation)
  return hs
end

local health = status.health
if health == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to assess cluster health"
  return hs
end

local mapped = healthToStatus[health]
if mapped == nil then
  hs.status = "Unknown"
  hs.message = "Unrecognised cluster health " .. tostring(health)
  return hs
end

hs.status = mapped
hs.message = "Cluster health is " .. health
local why = detail(status.conditions)
if why ~= nil then
  hs.message = hs.message .. ": " .. why
end
return hs
