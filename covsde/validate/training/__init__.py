"""Training checks for covsde's blocks: trainable modules whose initialisation is the derivation's
(:mod:`.modules`), parameterisations for training (:mod:`.params`), seeded synthetic tasks
(:mod:`.tasks`), the checks across width (:mod:`.check`), and :func:`train_check`, which runs them all
and writes report.json and the plots (:mod:`.report`)."""
from .report import estimate, train_check, validate_request  # noqa: F401
