"""What the tools/make_*_notebook.py scripts share: write a list of cells as a source notebook
(outputs stripped, Python 3 kernel)."""
import nbformat as nbf


def write_notebook(cells, path: str) -> None:
    nb = nbf.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    nbf.write(nb, path)
    print("wrote", path)
