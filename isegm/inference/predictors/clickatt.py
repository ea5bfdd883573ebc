"""The original module path of the EMC-Click predictor."""
from isegm.inference.predictor import EMCClickPredictor as ClickAttPredictor

__all__ = ["ClickAttPredictor"]
