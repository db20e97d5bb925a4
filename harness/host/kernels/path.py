"""The `path` flavour: a kernel the user built, as a bzImage and a module tree."""

from __future__ import annotations

from pathlib import Path

from harness.host.kernels.kernel import Kernel, check_image, release_of_modules
from harness.pure.errors import KernelError


def provide(image: Path, modules: Path) -> Kernel:
    image, modules = Path(image).expanduser().resolve(), Path(modules).expanduser().resolve()
    if image.is_dir():
        raise KernelError(f"kernel image {image} is a directory: pass the image inside it, "
                          f"e.g. {image}/arch/x86/boot/bzImage")
    if not image.is_file():
        raise KernelError(f"kernel image {image} does not exist: pass arch/x86/boot/bzImage")
    check_image(image)
    # Accept either INSTALL_MOD_PATH (holding lib/modules/<rel>) or lib/modules/<rel> itself.
    if (modules / "modules.dep").is_file():
        release, root = modules.name, modules.parents[2]
        if modules.parent != root / "lib" / "modules":
            raise KernelError(
                f"{modules} must sit at <root>/lib/modules/<release>: "
                f"install with 'make modules_install INSTALL_MOD_PATH=<root>' and pass <root>"
            )
    else:
        root, release = modules, release_of_modules(modules)
    return Kernel(flavour="path", release=release, image=image, modules_root=root)
