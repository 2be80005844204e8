"""Re-identification data.

base.py       ReidSet / ReidSplits: images with person and camera ids; train / query / gallery
market.py     readers of Market-1501 and of the plain ROOT/{train,query,gallery}/<pid>/<cam>_*.jpg layout
photoreid.py  PhotoReID: real photos as identities, seen through synthetic cameras (built into the cache)
vtest.py      pedestrian tracks of OpenCV's vtest.avi: HOG detector + IoU tracker (built into the cache)
"""
