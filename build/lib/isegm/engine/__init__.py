"""Training: the EMC-Click trainer, its optimizer and the recipe the model configs share."""
