"""EfficientDet for the super-taxonomy: labeler, benches, training, prediction and evaluation."""

import warnings

# effdet decorates functions with torch.jit.script at import; torch >= 2.10 warns about it on
# every run. Nothing here scripts models, so the warning is noise for users of this package.
warnings.filterwarnings("ignore", message=r"`torch.jit.script` is deprecated",
                        category=FutureWarning)
