-- Argo CD health check for modelfleet.io/ModelDeployment.
--
-- Argo CD sets the global `obj` to the live object; the script returns a table `hs`
-- with `status` (Healthy | Progressing | Degraded | Suspended | Missing | Unknown)
-- and `message`. Only base Lua 5.1 is used: Argo CD does not open the string library
-- for health checks unless useOpenLibs is set.
--
-- Until the operator has observed the current generation, every condition describes an
-- older spec, so the object is Progressing whatever the conditions say.

-- Reasons the operator sets on Ready=False that retrying will not fix: a human must
-- change the spec, the fleet or the budget.
local terminalReasons = {
  InvalidSpec = true,
  NoCandidates = true,
  BudgetExceeded = true,
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

-- The condition's message, or its reason, or the given fallback.
local function describe(condition, fallback)
  if condition ~= nil then
    if condition.message ~= nil and condition.message ~= "" then
      return condition.message
    end
    if condition.reason ~= nil and condition.reason ~= "" then
      return condition.reason
    end
  end
  return fallback
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

local ready = findCondition(status.conditions, "Ready")
local degraded = findCondition(status.conditions, "Degraded")
local progressing = findCondition(status.conditions, "Progressing")

if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = describe(ready, "All replicas are ready")
elseif degraded ~= nil and degraded.status == "True" then
  hs.status = "Degraded"
  hs.message = describe(degraded, "Degraded")
elseif ready ~= nil and ready.status == "False" and terminalReasons[ready.reason] then
  hs.status = "Degraded"
  hs.message = describe(ready, ready.reason)
elseif progressing ~= nil and progressing.status == "True" then
  hs.status = "Progressing"
  hs.message = describe(progressing, "Progressing")
else
  hs.status = "Progressing"
  hs.message = describe(ready, "Waiting for the operator to report readiness")
end
return hs
