"""Progress writers (CNTK's names): what a trainer reports as it trains.

:class:`ProgressPrinter` prints (or appends to a file) running averages and epoch summaries;
:class:`TensorBoardProgressWriter` writes TensorBoard event files (scalars, image grids,
histograms, the model's graph). Give them to ``Trainer(..., progress_writers=[...])``: every
``train_minibatch`` and ``test_minibatch`` feeds them, and ``summarize_training_progress()`` /
``summarize_test_progress()`` write the summaries.
"""
from .base import (
    Progress,
    ProgressWriter,
    process_rank,
    summarize_test_progress,
    summarize_training_progress,
    write_test_progress,
    write_training_progress,
)
from .printer import ProgressPrinter
from .tensorboard import TensorBoardProgressWriter

__all__ = ["ProgressWriter", "Progress", "ProgressPrinter", "TensorBoardProgressWriter", "process_rank",
           "write_training_progress", "write_test_progress", "summarize_training_progress", "summarize_test_progress"]
