"""The hotline pipeline: URL reports, verification crawl, assessment, hosting attribution,
notices until removal, removal confirmation and the figures a hotline publishes (see
:mod:`amparo.hotline.service`)."""
