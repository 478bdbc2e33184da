"""The IPython extension's historical entry point: `%load_ext kernel_ext` registers gadgetbook's magics too."""

from gadgetbook.magics import load_ipython_extension

__all__ = ["load_ipython_extension"]
