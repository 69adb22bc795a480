"""Pictures and files made from results: renderings, PNG/GIF exports, the zoo as PNG or self-contained HTML."""

from .export import save_gif, save_grid_png, save_png
from .zoo_render import zoo_figure_png, zoo_html, zoo_png_bytes

__all__ = ["save_gif", "save_grid_png", "save_png", "zoo_figure_png", "zoo_html", "zoo_png_bytes"]
