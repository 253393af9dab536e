"""WeCom (企业微信): customer contacts and customer groups in, actions out."""
