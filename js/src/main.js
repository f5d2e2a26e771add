// /ian.js: the snippet configured by its own <script> tag.
import { readConfig } from './config.js'
import { install } from './snippet.js'

const doc = document
install(readConfig(doc.currentScript || doc.querySelector('script[data-ian-endpoint]')))
