"""vganzoo-toy: an example vganzoo plugin (see models.py)."""
