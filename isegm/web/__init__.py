"""The annotation tool: a local web page and an HTTP session API on a shared EMC-Click model.

The top layer of the package: nothing else in ``isegm`` imports it. ``scripts/demo.py`` starts it.
"""
from isegm.web.app import create_app
from isegm.web.images import ImageListing
from isegm.web.limits import ServerLimits

__all__ = ["create_app", "ImageListing", "ServerLimits"]
