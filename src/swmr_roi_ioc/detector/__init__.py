"""Watch an areaDetector NDFileHDF5 plugin over Channel Access (issue "detector")."""
