"""Files in and out beyond the network itself: self-contained ``.pt`` checkpoints and model
loading (``checkpoint``), and Darknet's small text formats: ``.data``, names, image lists,
labels (``data``).  Reading user files and atomic writes are ``darknet_py.files``; the
``.weights`` format is ``darknet_py.nn.weights``.

Import the modules themselves; this package imports nothing.
"""
