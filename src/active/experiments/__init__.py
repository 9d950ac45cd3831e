"""Experiments that train and then evaluate: cross-validation by video (the model comparison,
the paper's Table I), the branch ablation (Table II), seeds fused into ensembles
(:mod:`crossval`), their results file and claims (:mod:`cvstore`) and their tables
(:mod:`cvtable`). This layer sits above :mod:`active.evaluation`, which scores checkpoints and
imports no trainer."""
