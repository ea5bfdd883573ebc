"""EMC-Click: efficient mask correction for click-based interactive image segmentation."""
import os

# albumentations phones home on import unless told not to; nothing here should touch the network.
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
