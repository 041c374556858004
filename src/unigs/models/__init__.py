"""UNet builder and local weight loading."""
