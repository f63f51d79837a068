from configparser import ConfigParser
import setuptools

cfg = ConfigParser(delimiters=['='])
cfg.read('settings.ini', encoding='utf-8')
cfg = cfg['DEFAULT']
requirements = cfg.get('requirements', '').split()
dev_requirements = cfg.get('dev_requirements', '').replace(', ', ',').split()
ray_requirements = cfg.get('ray_requirements', '').split()  # pip install 'resnet_fast[ray]': sweeps on a Ray cluster
peer_requirements = cfg.get('peer_requirements', '').split()  # pip install 'resnet_fast[peer]': airbench94 beside a recipe on a GPU (bench --peer)
setuptools.setup(
    name=cfg['lib_name'], version=cfg['version'], description=cfg['description'],
    author=cfg['author'], license='Apache-2.0', python_requires=f">={cfg['min_python']}",
    packages=setuptools.find_packages(include=[cfg['lib_path'], cfg['lib_path'] + '.*']),
    install_requires=requirements, extras_require={'dev': dev_requirements, 'ray': ray_requirements, 'peer': peer_requirements},
    entry_points={'console_scripts': cfg.get('console_scripts', '').split(),
                  'nbdev': [f"{cfg['lib_path']}={cfg['lib_path']}._modidx:d"]},
    long_description=open('README.md', encoding='utf-8').read() if __import__('os').path.exists('README.md') else '',
    long_description_content_type='text/markdown', zip_safe=False)
