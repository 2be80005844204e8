"""Data: real-photo sources, image I/O, folder layouts, transforms and benchmark builders."""
