"""Whole datasets: finding their sequences (:mod:`.sequences`), tracking them here, in
local workers or on Ray (:mod:`.run`), and reporting the run (:mod:`.report`)."""
