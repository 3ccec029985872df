"""The framework-free operator loop: scheduling, bounded passes, pool upkeep, outcomes.

Fed by the kopf handlers (``modelfleet.handlers``) and driven by the simulator
(``modelfleet.sim``) on its virtual clock: one implementation of "what runs when".
"""

from modelfleet.loop.operator_loop import LoopSettings, OperatorLoop
from modelfleet.loop.schedule import Cadence, Schedule

__all__ = ["Cadence", "LoopSettings", "OperatorLoop", "Schedule"]
