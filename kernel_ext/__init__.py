"""The IPython extension: %gadget magics. Thin: parse, call gadgetbook, display."""


def load_ipython_extension(ipython) -> None:
    from kernel_ext.magics import GadgetMagics

    ipython.register_magics(GadgetMagics)
