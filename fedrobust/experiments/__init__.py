"""Many runs: grids of run keys (:mod:`~fedrobust.experiments.sweep`), their records
(:mod:`~fedrobust.experiments.cellrecord`) and reports with tables and plots
(:mod:`~fedrobust.experiments.report`)."""
