"""Interactive explorers of convolution and pooling for JupyterLab, checked by torch.

``ConvExplorer`` draws ``nn.Conv2d``'s padded input, output and the input cells that feed the
output cell under the pointer; ``PoolExplorer`` does the same for ``nn.MaxPool2d`` and
``nn.AvgPool2d``. Every number they show comes from a real torch layer in the kernel; where torch
refuses a setting they show torch's message. Without a widget front end (nbconvert, the grader)
they show a static picture of the same settings.

    from course.widgets import ConvExplorer
    ConvExplorer(height=5, width=5, kernel_size=3, padding="same", padding_mode="reflect")
"""

from course.widgets.explorers import ConvExplorer, PoolExplorer

__all__ = ["ConvExplorer", "PoolExplorer"]
