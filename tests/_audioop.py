"""The stdlib audioop (or audioop-lts on Python 3.13+), the G.711 contract."""
import warnings

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop  # noqa: F401
