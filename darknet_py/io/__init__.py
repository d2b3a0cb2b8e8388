"""Files in and out: user-named files and atomic writes (``files``), Darknet ``.weights``
(``weights``), self-contained ``.pt`` checkpoints and model loading (``checkpoint``), and
Darknet's small text formats: ``.data``, names, image lists, labels (``data``).

Import the modules themselves; this package imports nothing, so ``darknet_py.cfg`` can
use ``io.files`` without torch.
"""
