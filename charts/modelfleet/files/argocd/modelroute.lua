-- Argo CD health check for modelfleet.io/ModelRoute.
--
-- Argo CD sets the global `obj` to the live object; the script returns a table `hs`
-- with `status` and `message`. Only base Lua 5.1 is used (no string library).
--
-- The gateway writes the route's conditions (docs/gateway.md):
--   Accepted False (another ModelRoute serves one of its names, or the gateway ignores the
--     route as invalid: reason InvalidSpec, written without ResolvedRefs) -> Degraded
--   ResolvedRefs False (a backend or fallback deployment is missing) -> Degraded
--   both True -> Healthy
-- Until a gateway has observed the current generation the route is Progressing (a gateway
-- run with --no-route-status never reports: leave this check out then).

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

local hs = {}
local generation = obj.metadata.generation
local status = obj.status

if status == nil or status.observedGeneration == nil
    or (generation ~= nil and status.observedGeneration ~= generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for the gateway to observe generation " .. tostring(generation)
  return hs
end

local accepted = findCondition(status.conditions, "Accepted")
local resolved = findCondition(status.conditions, "ResolvedRefs")
if accepted ~= nil and accepted.status == "False" then
  hs.status = "Degraded"
  hs.message = tostring(accepted.reason) .. ": " .. tostring(accepted.message)
  return hs
end
if accepted == nil or resolved == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the gateway's Accepted and ResolvedRefs conditions"
  return hs
end

for _, condition in ipairs({accepted, resolved}) do
  if condition.status == "False" then
    hs.status = "Degraded"
    hs.message = tostring(condition.reason) .. ": " .. tostring(condition.message)
    return hs
  end
end
for _, condition in ipairs({accepted, resolved}) do
  if condition.status ~= "True" then
    hs.status = "Unknown"
    hs.message = condition.type .. " is " .. tostring(condition.status)
    return hs
  end
end

hs.status = "Healthy"
hs.message = "Route " .. tostring(accepted.message)
return hs
